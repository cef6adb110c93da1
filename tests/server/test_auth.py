"""Access control against real servers on 127.0.0.1 (port 0): users and static tokens from the
``[auth]`` table, basic credentials exchanged for expiring bearer tokens, permissions per
collection glob, listings filtered, and read-only credentials that never change a byte, through
plain ``pyarrow.flight`` clients and ``zcollection_client.connect``.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest
import zcollection as zc
import zcollection_client as zcc
import zcollection_proto as zp
from zcollection_server import ServerSettings, ZCollectionFlightServer, cli
from zcollection_server.auth import (
    REQUIRED,
    AuthConfigError,
    Permission,
    hash_password,
    parse_auth_config,
    token_digest,
    verify_password,
)
from zcollection_server.settings import SettingsError, is_loopback, load_config

PASSWORDS = {"admin": "admin-pw", "reader": "reader-pw", "teamer": "team-pw"}
TOKENS = {
    "ro": "ro-token-0123456789abcdef",
    "team": "team-token-0123456789abcdef",
    "alti-admin": "alti-admin-token-0123456789",
}


def _auth_toml(ttl: int = 3600, secret: str | None = None) -> str:
    # A cheap scrypt cost keeps the tests fast; the default cost is checked once below.
    hashes = {user: hash_password(pw, n=2**10) for user, pw in PASSWORDS.items()}
    lines = ["[auth]", f"token_ttl = {ttl}"]
    if secret is not None:
        lines.append(f'token_secret = "{secret}"')
    lines += [
        "[auth.users.admin]",
        f'password = "{hashes["admin"]}"',
        'permissions = { "*" = "admin" }',
        "[auth.users.reader]",
        f'password = "{hashes["reader"]}"',
        'permissions = { "*" = "read" }',
        "[auth.users.teamer]",
        f'password = "{hashes["teamer"]}"',
        'permissions = { "team/*" = "write", "alti" = "read" }',
        "[auth.tokens.ro]",
        f'sha256 = "{token_digest(TOKENS["ro"])}"',
        'permissions = { "*" = "read" }',
        "[auth.tokens.team]",
        f'sha256 = "{token_digest(TOKENS["team"])}"',
        "[auth.tokens.team.permissions]",
        '"team/*" = "write"',
        "[auth.tokens.alti-admin]",
        f'sha256 = "{token_digest(TOKENS["alti-admin"])}"',
        'permissions = { "alti" = "admin", "alt?" = "read" }',
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def auth_toml() -> str:
    return _auth_toml()


@pytest.fixture
def root(tmp_path: Path, h: Any) -> Path:
    """``alti`` (monthly), ``team/alpha`` and ``secret`` (sequences)."""
    root = tmp_path / "root"
    h.make_alti(str(root / "alti"), months=2, catalog=True)
    h.make_seq(str(root / "team" / "alpha"))
    h.make_seq(str(root / "secret"))
    return root


@pytest.fixture
def secured(start_server: Callable[..., Any], root: Path, auth_toml: str) -> Any:
    """A server over ``root`` whose calls need the credentials of ``auth_toml``."""
    return start_server(root, auth=parse_auth_config(tomllib.loads(auth_toml)["auth"]))


def bearer(token: str) -> flight.FlightCallOptions:
    return flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {token}".encode())])


def basic(user: str, password: str) -> tuple[bytes, bytes]:
    return (b"authorization", b"Basic " + base64.b64encode(f"{user}:{password}".encode()))


def login(running: Any, user: str) -> str:
    """Exchange basic credentials for a bearer token (Flight's handshake)."""
    key, value = running.connect().authenticate_basic_token(user, PASSWORDS[user])
    assert key == b"authorization"
    assert value.startswith(b"Bearer ")
    return value.decode()[len("Bearer ") :]


@contextmanager
def call_logs() -> Iterator[list[str]]:
    """Collect the call log lines (whatever handlers the server's logging has)."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("zcollection_server.calls")
    handler, level = Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


class Caller:
    """A plain pyarrow client sending the same options with every call."""

    def __init__(self, client: flight.FlightClient, options: flight.FlightCallOptions) -> None:
        self.client = client
        self.options = options

    def list_flights(self) -> list[str]:
        return sorted(
            i.descriptor.path[0].decode() for i in self.client.list_flights(b"", self.options)
        )

    def info(self, name: str) -> flight.FlightInfo:
        return self.client.get_flight_info(flight.FlightDescriptor.for_path(name), self.options)

    def schema(self, name: str) -> pa.Schema:
        return self.client.get_schema(flight.FlightDescriptor.for_path(name), self.options).schema

    def get(self, ticket: bytes) -> pa.Table:
        return self.client.do_get(flight.Ticket(ticket), self.options).read_all()

    def read(self, name: str) -> int:
        """Read every partition endpoint of collection ``name``; return the rows read."""
        endpoints = [e for e in self.info(name).endpoints if e.app_metadata]
        return sum(self.get(e.ticket.ticket).num_rows for e in endpoints)

    def put(self, descriptor: flight.FlightDescriptor, table: pa.Table) -> None:
        writer, reader = self.client.do_put(descriptor, table.schema, self.options)
        writer.write_table(table)
        writer.done_writing()
        while reader.read() is not None:
            pass
        writer.close()

    def action(self, verb: str, message: Any = None) -> Any:
        spec = zp.ACTIONS[zp.action_name(verb)]
        body = zp.encode_message(message if message is not None else spec.request())
        results = list(self.client.do_action(flight.Action(spec.name, body), self.options))
        return zp.decode_message(results[0].body.to_pybytes(), spec.result)


def caller(running: Any, token: str | None = None, headers: Any = None) -> Caller:
    if headers is None:
        headers = [] if token is None else [(b"authorization", f"Bearer {token}".encode())]
    return Caller(running.connect(), flight.FlightCallOptions(headers=headers, timeout=60))


def denied(h: Any, call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(flight.FlightUnauthorizedError) as caught:
        call()
    info = h.error_info(caught.value)
    assert (info["code"], info["kind"]) == ("PERMISSION_DENIED", "permission_denied")
    return info


def unauthenticated(h: Any, call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(flight.FlightUnauthenticatedError) as caught:
        call()
    info = h.error_info(caught.value)
    assert (info["code"], info["kind"]) == ("UNAUTHENTICATED", "unauthenticated")
    return info


def schema_refused(call: Callable[[], Any], code: str) -> str:
    """pyarrow's get_schema loses Flight statuses (its client raises a plain Arrow error, its
    server sends handler errors as UNKNOWN): the code is still the message's prefix. The raw
    gRPC statuses are checked in ``test_grpc_status_codes``."""
    with pytest.raises((pa.ArrowException, OSError)) as caught:
        call()
    text = str(caught.value)
    match = re.search(rf"\[{code}\] .*?\(request ([0-9a-f]{{16}})\)", text)
    assert match is not None, text
    return match.group(1)


def _alti_rows(h: Any) -> pa.Table:
    return zp.dataset_to_table(h.alti_dataset("2024-02-20", 15, seed=3), axis="time")


def _seq_rows(h: Any) -> pa.Table:
    return zp.dataset_to_table(h.seq_dataset([7, 2]), axis="obs")


def _create(h: Any, name: str, overwrite: bool = False) -> zp.CreateCollection:
    return zp.CreateCollection(
        collection=name,
        schema=json.dumps(h.alti_schema().to_json()),
        axis="time",
        partitioning=json.dumps(h.monthly().to_json()),
        overwrite=overwrite,
    )


def _view_variable() -> str:
    schema = (
        zc.Schema()
        .with_dimension("time", chunks=64)
        .with_variable("extra", dtype="float32", dimensions=("time",))
        .build()
    )
    return json.dumps(schema.all_variables()["/extra"].to_json())


# -- the permission table ----------------------------------------------------------------------
FLIGHT_METHODS = [
    "list_flights",
    "list_actions",
    "get_schema",
    "get_flight_info",
    "do_get",
    "do_put",
    "do_exchange",
]


def test_every_method_and_action_has_an_entry_in_the_permission_table() -> None:
    assert set(REQUIRED) == set(FLIGHT_METHODS) | set(zp.ACTIONS)
    assert REQUIRED["do_put"] == Permission.WRITE
    for verb in ("create_collection", "delete_collection", "drop_partitions", "repair_catalog"):
        assert REQUIRED[zp.action_name(verb)] == Permission.ADMIN
    assert REQUIRED[zp.action_name("create_view")] == Permission.ADMIN


def mutating_calls(h: Any) -> dict[str, Callable[[Caller], Any]]:
    """One call per method or action needing more than read, each aimed at ``alti``."""
    return {
        "do_put": lambda c: c.put(flight.FlightDescriptor.for_path("alti"), _alti_rows(h)),
        "zcollection.v1.create_collection": lambda c: c.action(
            "create_collection", _create(h, "alti", overwrite=True)
        ),
        "zcollection.v1.delete_collection": lambda c: c.action(
            "delete_collection", zp.DeleteCollection(collection="alti")
        ),
        "zcollection.v1.drop_partitions": lambda c: c.action(
            "drop_partitions", zp.DropPartitions(collection="alti", all=True)
        ),
        "zcollection.v1.repair_catalog": lambda c: c.action(
            "repair_catalog", zp.RepairCatalog(collection="alti")
        ),
        "zcollection.v1.create_view": lambda c: c.action(
            "create_view", zp.CreateView(collection="alti", view="v", variables=[_view_variable()])
        ),
        "do_exchange": _exchange,
    }


def _exchange(c: Caller) -> None:
    writer, reader = c.client.do_exchange(flight.FlightDescriptor.for_path("alti"), c.options)
    try:
        reader.read_chunk()
    finally:
        writer.close()


def test_the_mutating_calls_cover_every_operation_above_read(h: Any) -> None:
    above_read = {op for op, level in REQUIRED.items() if level is not None and level > 1}
    assert set(mutating_calls(h)) == above_read


# -- read-only credentials ---------------------------------------------------------------------
def _every_put(h: Any) -> list[tuple[flight.FlightDescriptor, pa.Table]]:
    rows = _alti_rows(h)

    def insert(**fields: Any) -> flight.FlightDescriptor:
        return flight.FlightDescriptor.for_command(zp.encode_command(zp.Insert(**fields)))

    return [
        (flight.FlightDescriptor.for_path("alti"), rows),
        (insert(collection="alti"), rows),
        (insert(collection="alti", merge="upsert"), rows),
        (insert(collection="alti", merge="time_series", overwrite=True), rows),
        (insert(collection="alti", rewrite=True, partition="year=2024/month=01"), rows),
        (insert(collection="alti", view="v", partition="year=2024/month=01"), rows),
        (
            flight.FlightDescriptor.for_command(
                zp.encode_command(zp.Insert(collection="alti", merge="upsert"), as_json=True)
            ),
            rows,
        ),
    ]


@pytest.mark.parametrize("who", ["token", "basic-user"])
def test_a_read_only_credential_never_changes_data(
    h: Any, secured: Any, root: Path, who: str
) -> None:
    token = TOKENS["ro"] if who == "token" else login(secured, "reader")
    ro = caller(secured, token)
    before = h.snapshot(root)
    # it reads
    assert ro.list_flights() == ["alti", "secret", "team/alpha"]
    assert ro.read("alti") == 60 * 4
    assert ro.schema("team/alpha").names
    assert ro.action("describe", zp.Describe(collection="alti")).info.collection == "alti"
    assert len(ro.action("list_partitions", zp.ListPartitions(collection="alti")).partitions) == 2
    assert list(ro.action("list_views", zp.ListViews(collection="alti")).views) == []
    # it never writes: every put, every mutating action, on every collection
    for descriptor, table in _every_put(h):
        denied(h, lambda d=descriptor, t=table: ro.put(d, t))
    denied(h, lambda: ro.put(flight.FlightDescriptor.for_path("team/alpha"), _seq_rows(h)))
    for operation, call in mutating_calls(h).items():
        denied(h, lambda call=call: call(ro))
        assert h.snapshot(root) == before, operation
    for name in ("alti", "team/alpha", "secret", "new", "team/new"):
        denied(h, lambda n=name: ro.action("create_collection", _create(h, n)))
        denied(h, lambda n=name: ro.action("delete_collection", zp.DeleteCollection(collection=n)))
        denied(
            h,
            lambda n=name: ro.action("drop_partitions", zp.DropPartitions(collection=n, all=True)),
        )
        denied(h, lambda n=name: ro.action("repair_catalog", zp.RepairCatalog(collection=n)))
    assert h.snapshot(root) == before
    # the same calls with the admin's token do change data (the calls above were valid)
    admin = caller(secured, login(secured, "admin"))
    admin.put(flight.FlightDescriptor.for_path("alti"), _alti_rows(h))
    assert h.snapshot(root) != before


def test_write_is_not_admin(h: Any, secured: Any, root: Path) -> None:
    team = caller(secured, TOKENS["team"])
    team.put(flight.FlightDescriptor.for_path("team/alpha"), _seq_rows(h))
    assert team.read("team/alpha") == 20
    before = h.snapshot(root)
    denied(
        h,
        lambda: team.action(
            "drop_partitions", zp.DropPartitions(collection="team/alpha", all=True)
        ),
    )
    denied(h, lambda: team.action("repair_catalog", zp.RepairCatalog(collection="team/alpha")))
    denied(
        h, lambda: team.action("delete_collection", zp.DeleteCollection(collection="team/alpha"))
    )
    denied(h, lambda: team.action("create_collection", _create(h, "team/beta")))
    assert h.snapshot(root) == before


def test_admin_creates_and_deletes(h: Any, secured: Any, root: Path) -> None:
    admin = caller(secured, login(secured, "admin"))
    admin.action("create_collection", _create(h, "team/beta"))
    admin.put(flight.FlightDescriptor.for_path("team/beta"), _alti_rows(h))
    assert admin.read("team/beta") == 15 * 4
    dropped = admin.action("drop_partitions", zp.DropPartitions(collection="team/beta", all=True))
    assert len(dropped.partitions) == 2
    admin.action("repair_catalog", zp.RepairCatalog(collection="alti"))
    admin.action("delete_collection", zp.DeleteCollection(collection="team/beta"))
    assert admin.list_flights() == ["alti", "secret", "team/alpha"]


# -- globs and listings ------------------------------------------------------------------------
def test_glob_permissions(h: Any, secured: Any, root: Path) -> None:
    team = caller(secured, TOKENS["team"])
    assert team.read("team/alpha") == 15
    for name in ("alti", "secret", "nope", "team"):
        denied(h, lambda n=name: team.info(n))
        schema_refused(lambda n=name: team.schema(n), "PERMISSION_DENIED")
        denied(h, lambda n=name: team.action("describe", zp.Describe(collection=n)))
        denied(h, lambda n=name: team.action("list_partitions", zp.ListPartitions(collection=n)))
    # a collection the credential may read but that does not exist is NOT_FOUND
    with pytest.raises(pa.ArrowKeyError):
        team.info("team/nope")
    # tickets are self-contained: one obtained by the admin is refused to the team token
    admin = caller(secured, login(secured, "admin"))
    ticket = admin.info("secret").endpoints[0].ticket.ticket
    assert admin.get(ticket).num_rows == 5
    denied(h, lambda: team.get(ticket))
    query = zp.encode_command(zp.Query(collection="secret"))
    denied(h, lambda: team.get(query))
    # "alti" = "admin" and "alt?" = "read": the highest matching level wins
    alti_admin = caller(secured, TOKENS["alti-admin"])
    alti_admin.action("repair_catalog", zp.RepairCatalog(collection="alti"))
    denied(h, lambda: alti_admin.info("team/alpha"))
    # a user whose permissions mix levels
    teamer = caller(secured, login(secured, "teamer"))
    assert teamer.read("alti") == 60 * 4
    denied(h, lambda: teamer.put(flight.FlightDescriptor.for_path("alti"), _alti_rows(h)))
    teamer.put(flight.FlightDescriptor.for_path("team/alpha"), _seq_rows(h))


@pytest.mark.parametrize(
    ("credential", "visible"),
    [
        ("ro", ["alti", "secret", "team/alpha"]),
        ("team", ["team/alpha"]),
        ("alti-admin", ["alti"]),
    ],
)
def test_listings_show_only_readable_collections(
    h: Any, secured: Any, credential: str, visible: list[str]
) -> None:
    client = caller(secured, TOKENS[credential])
    assert client.list_flights() == visible
    assert list(client.action("list_collections").collections) == visible


# -- authentication ----------------------------------------------------------------------------
def test_calls_without_credentials_are_unauthenticated(h: Any, secured: Any, root: Path) -> None:
    anonymous = caller(secured)
    before = h.snapshot(root)
    with call_logs() as lines:
        calls: list[Callable[[], Any]] = [
            anonymous.list_flights,
            lambda: anonymous.info("alti"),
            lambda: anonymous.get(zp.encode_command(zp.Query(collection="alti"))),
            lambda: anonymous.put(flight.FlightDescriptor.for_path("alti"), _alti_rows(h)),
            lambda: anonymous.action("health"),
            lambda: anonymous.action("server_info"),
            lambda: anonymous.action("list_collections"),
            lambda: anonymous.action(
                "drop_partitions", zp.DropPartitions(collection="alti", all=True)
            ),
            lambda: list(anonymous.client.list_actions(anonymous.options)),
        ]
        ids = [unauthenticated(h, call)["request_id"] for call in calls]
        ids.append(schema_refused(lambda: anonymous.schema("alti"), "UNAUTHENTICATED"))
    assert h.snapshot(root) == before
    logged = "\n".join(lines)
    for request_id in ids:
        assert f"request_id={request_id}" in logged
    assert "status=UNAUTHENTICATED" in logged


def test_wrong_credentials_are_unauthenticated(h: Any, secured: Any) -> None:
    client = secured.connect()
    unauthenticated(h, lambda: client.authenticate_basic_token("reader", "wrong"))
    unauthenticated(h, lambda: client.authenticate_basic_token("nobody", "reader-pw"))
    unauthenticated(h, lambda: client.authenticate_basic_token("", ""))
    for headers in (
        [basic("reader", "wrong")],
        [(b"authorization", b"Bearer not-a-token")],
        [(b"authorization", b"Bearer " + TOKENS["ro"].encode() + b"x")],
        [(b"authorization", b"Basic !!!")],
        [(b"authorization", b"Token " + TOKENS["ro"].encode())],
        [(b"authorization", b"Bearer")],
    ):
        unauthenticated(h, caller(secured, headers=headers).list_flights)


def test_basic_credentials_on_a_call_and_the_token_in_the_response(h: Any, secured: Any) -> None:
    direct = caller(secured, headers=[basic("reader", PASSWORDS["reader"])])
    assert direct.list_flights() == ["alti", "secret", "team/alpha"]
    token = login(secured, "reader")
    assert token.startswith("zc1.")
    assert caller(secured, token).read("secret") == 15
    # every handshake issues a fresh token
    assert login(secured, "reader") != token


def test_tokens_expire(h: Any, secured: Any) -> None:
    token = login(secured, "reader")
    client = caller(secured, token)
    assert client.list_flights()
    access = secured.server.access
    now = access.clock
    access.clock = lambda: now() + 3599
    assert client.list_flights()
    access.clock = lambda: now() + 3601
    unauthenticated(h, client.list_flights)
    # static tokens do not expire; basic credentials give a fresh token
    assert caller(secured, TOKENS["ro"]).list_flights()
    assert caller(secured, login(secured, "reader")).list_flights()


def test_tampered_and_foreign_tokens_are_refused(
    h: Any, start_server: Callable[..., Any], root: Path
) -> None:
    shared = _auth_toml(secret="a-secret-shared-by-the-fleet")
    one = start_server(root, auth=parse_auth_config(tomllib.loads(shared)["auth"]))
    two = start_server(root, auth=parse_auth_config(tomllib.loads(shared)["auth"]))
    other = start_server(root, auth=parse_auth_config(tomllib.loads(_auth_toml())["auth"]))
    token = login(one, "teamer")
    # a fleet sharing token_secret accepts each other's tokens
    assert caller(two, token).list_flights() == ["alti", "team/alpha"]
    unauthenticated(h, caller(other, token).list_flights)
    prefix, payload, signature = token.split(".")
    forged = json.dumps({"sub": "admin", "exp": 4102444800, "n": "0"}).encode()
    forged_payload = base64.urlsafe_b64encode(forged).decode().rstrip("=")
    for bad in (
        f"{prefix}.{forged_payload}.{signature}",
        f"{prefix}.{payload}.{signature[:-2]}",
        f"{prefix}.{payload}",
        token + "x",
    ):
        unauthenticated(h, caller(one, bad).list_flights)


def test_repeated_authorization_headers(h: Any, secured: Any) -> None:
    ro = f"Bearer {TOKENS['ro']}".encode()
    for headers in (
        [(b"authorization", b"Bearer expired-or-wrong"), (b"authorization", ro)],
        [(b"authorization", ro), (b"authorization", b"Bearer expired-or-wrong")],
        [(b"authorization", b"Basic !!!"), basic("reader", PASSWORDS["reader"])],
        [(b"authorization", b"Bearer nope, " + ro)],
    ):
        assert caller(secured, headers=headers).list_flights() == ["alti", "secret", "team/alpha"]
    # the first valid credential decides: the team token does not gain the reader's rights
    both = [(b"authorization", f"Bearer {TOKENS['team']}".encode()), (b"authorization", ro)]
    assert caller(secured, headers=both).list_flights() == ["team/alpha"]


def test_server_info_names_the_schemes(h: Any, secured: Any, start_server: Any, root: Path) -> None:
    info = caller(secured, TOKENS["ro"]).action("server_info")
    assert list(info.auth) == ["basic", "bearer"]
    open_server = start_server(root)
    assert list(h.action(open_server.client, "server_info", as_json=False).auth) == ["none"]


def test_call_logs_name_the_caller(h: Any, secured: Any) -> None:
    with call_logs() as lines:
        caller(secured, TOKENS["team"]).list_flights()
        denied(h, lambda: caller(secured, TOKENS["team"]).info("secret"))
    logged = "\n".join(lines)
    assert "method=list_flights" in logged and "user=token:team" in logged
    assert "status=PERMISSION_DENIED" in logged


# -- zcollection_client ------------------------------------------------------------------------
def test_the_python_client(h: Any, secured: Any, root: Path) -> None:
    url = f"grpc://127.0.0.1:{secured.server.port}"
    options = zcc.ClientOptions(retries=1)
    expected = zc.open_collection(str(root / "alti")).query()
    with zcc.connect(url, username="reader", password=PASSWORDS["reader"], options=options) as c:
        assert c.list_collections() == ["alti", "secret", "team/alpha"]
        h.assert_same_bits(expected, c.open_collection("alti").query())
        before = h.snapshot(root)
        with pytest.raises(zc.ReadOnlyError, match="lacks write"):
            c.open_collection("alti", mode="rw").insert(h.alti_dataset("2024-02-20", 3))
        with pytest.raises(zc.ReadOnlyError):
            c.delete_collection("alti")
        with pytest.raises(zc.ReadOnlyError):
            c.open_collection("alti", mode="rw").drop_partitions(filters="month == 1")
        assert h.snapshot(root) == before
    with zcc.connect(url, token=TOKENS["team"], options=options) as c:
        assert c.list_collections() == ["team/alpha"]
        with pytest.raises(zc.ReadOnlyError):
            c.open_collection("alti")
        rw = c.open_collection("team/alpha", mode="rw")
        rw.insert(h.seq_dataset([7]))
        assert 7 in set(rw.query(variables=["num"])["num"].to_numpy().tolist())
    with zcc.connect(url, username="admin", password=PASSWORDS["admin"], options=options) as c:
        c.delete_collection("team/alpha")
        assert c.list_collections() == ["alti", "secret"]
    with pytest.raises(flight.FlightUnauthenticatedError):
        zcc.connect(url, username="reader", password="wrong", options=options)
    with zcc.connect(url, options=options) as c, pytest.raises(flight.FlightUnauthenticatedError):
        c.list_collections()
    with (
        zcc.connect(url, token="wrong", options=options) as c,
        pytest.raises(flight.FlightUnauthenticatedError),
    ):
        c.list_collections()


# -- configuration and startup -----------------------------------------------------------------
def test_passwords_are_salted_hashes() -> None:
    first, second = hash_password("same"), hash_password("same")
    assert first != second
    assert first.startswith("scrypt$16384$8$1$")
    assert "same" not in first
    assert verify_password("same", first)
    assert verify_password("same", second)
    assert not verify_password("other", first)


def test_the_hash_password_and_new_token_commands() -> None:
    run = [sys.executable, "-m", "zcollection_server"]
    hashed = subprocess.run(
        [*run, "hash-password"], input="s3cret\n", capture_output=True, text=True, timeout=60
    )
    assert hashed.returncode == 0, hashed.stderr
    assert verify_password("s3cret", hashed.stdout.strip())
    made = subprocess.run(
        [sys.executable, "-m", "zcollection_server.auth", "new-token"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    values = {}
    for line in made.stdout.strip().splitlines():
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    assert json.loads(values["sha256"]) == token_digest(values["token"])


def test_the_config_file(tmp_path: Path, auth_toml: str) -> None:
    path = tmp_path / "server.toml"
    path.write_text(f'[server]\nhost = "0.0.0.0"\nroot = "{tmp_path}"\n' + auth_toml)
    settings = load_config(path).validate()  # authentication: any address may be bound
    assert settings.auth is not None and settings.auth.enabled
    assert settings.auth.token_ttl == 3600
    assert set(settings.auth.users) == {"admin", "reader", "teamer"}
    assert {p.name for p in settings.auth.tokens.values()} == {
        "token:ro",
        "token:team",
        "token:alti-admin",
    }


@pytest.mark.parametrize(
    "auth",
    [
        "[auth]\nfoo = 1\n",
        "[auth]\ntoken_ttl = -1\n",
        '[auth]\ntoken_secret = "short"\n',
        '[auth.users.a]\npassword = "plain-text"\n',
        '[auth.users.a]\npassword = "scrypt$3$8$1$AAAAAAAAAAA=$AAAAAAAAAAAAAAAAAAAAAA=="\n',
        '[auth.users."bad:name"]\npassword = "{hash}"\n',
        '[auth.users.a]\npassword = "{hash}"\npermissions = { "*" = "everything" }\n',
        '[auth.users.a]\npassword = "{hash}"\nrole = "admin"\n',
        '[auth.tokens.t]\nsha256 = "abc"\n',
        "[auth.tokens.t]\npermissions = {}\n",
    ],
)
def test_bad_auth_tables_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], auth: str
) -> None:
    path = tmp_path / "server.toml"
    path.write_text(
        f'[server]\nroot = "{tmp_path}"\n' + auth.replace("{hash}", hash_password("x", n=4))
    )
    with pytest.raises(SettingsError):
        load_config(path)
    assert cli.main(["--config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("zcollection-server: error: ")


def test_parse_auth_config_rejects_non_tables() -> None:
    with pytest.raises(AuthConfigError):
        parse_auth_config([])
    with pytest.raises(AuthConfigError):
        parse_auth_config({"users": []})


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("192.0.2.10", False),
        ("10.1.2.3", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_binding_elsewhere_needs_authentication(tmp_path: Path, auth_toml: str) -> None:
    """Checked by ``validate()``: no server is built (nothing binds a non-loopback address)."""
    for host in ("0.0.0.0", "::", "192.0.2.10"):
        with pytest.raises(SettingsError, match="--allow-insecure"):
            ServerSettings(host=host, port=0, root=str(tmp_path)).validate()
        with pytest.raises(SettingsError, match="--allow-insecure"):
            # the server refuses before it binds (validate runs first)
            ZCollectionFlightServer(ServerSettings(host=host, port=0, root=str(tmp_path)))
        auth = parse_auth_config(tomllib.loads(auth_toml)["auth"])
        ServerSettings(host=host, port=0, root=str(tmp_path), auth=auth).validate()
        ServerSettings(host=host, port=0, root=str(tmp_path), allow_insecure=True).validate()
    empty = parse_auth_config({})
    with pytest.raises(SettingsError):
        ServerSettings(host="0.0.0.0", port=0, root=str(tmp_path), auth=empty).validate()
    ServerSettings(host="127.0.0.1", port=0, root=str(tmp_path)).validate()
    args = cli._parser().parse_args(["--root", str(tmp_path), "--host", "0.0.0.0", "--port", "0"])
    with pytest.raises(SettingsError):
        cli.settings_from_args(args)
    args = cli._parser().parse_args(
        ["--root", str(tmp_path), "--host", "0.0.0.0", "--port", "0", "--allow-insecure"]
    )
    assert cli.settings_from_args(args).allow_insecure is True


def test_the_command_refuses_a_public_address_without_authentication(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "zcollection_server",
            "--root",
            str(tmp_path),
            "--host",
            "0.0.0.0",
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("zcollection-server: error: refusing to serve '0.0.0.0'")


# -- the gRPC statuses, as a gRPC stack other than Arrow's sees them ----------------------------
SERVICE = "/arrow.flight.protocol.FlightService/"


def _raw(channel: Any, method: str, request: bytes, token: str | None, stream: bool) -> Any:
    metadata = [] if token is None else [("authorization", f"Bearer {token}")]
    kind = channel.unary_stream if stream else channel.unary_unary
    call = kind(SERVICE + method, request_serializer=bytes, response_deserializer=bytes)
    result = call(request, metadata=metadata, timeout=30)
    return list(result) if stream else result


def test_grpc_status_codes(h: Any, secured: Any) -> None:
    import grpc

    admin = caller(secured, login(secured, "admin"))
    secret_ticket = admin.info("secret").endpoints[0].ticket
    path = flight.FlightDescriptor.for_path

    def action(verb: str, message: Any) -> bytes:
        return flight.Action(zp.action_name(verb), zp.encode_message(message)).serialize()

    calls: list[tuple[str, bytes, bool]] = [
        ("ListFlights", b"", True),
        ("ListActions", b"", True),
        ("GetSchema", path("secret").serialize(), False),
        ("GetFlightInfo", path("secret").serialize(), False),
        ("DoGet", secret_ticket.serialize(), True),
        ("DoAction", action("describe", zp.Describe(collection="secret")), True),
        (
            "DoAction",
            action("drop_partitions", zp.DropPartitions(collection="alti", all=True)),
            True,
        ),
        ("DoAction", action("create_collection", _create(h, "team/new")), True),
    ]
    with grpc.insecure_channel(f"127.0.0.1:{secured.server.port}") as channel:
        for method, request, stream in calls:
            for token in (None, "not-a-token"):
                with pytest.raises(grpc.RpcError) as caught:
                    _raw(channel, method, request, token, stream)
                assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, method
        for method, request, stream in calls[2:]:
            with pytest.raises(grpc.RpcError) as caught:
                _raw(channel, method, request, TOKENS["team"], stream)
            # pyarrow's server sends whatever get_schema raises as UNKNOWN (the code is in
            # the message); every other method answers PERMISSION_DENIED
            expected = "UNKNOWN" if method == "GetSchema" else "PERMISSION_DENIED"
            assert caught.value.code().name == expected, (method, caught.value)
            assert "[PERMISSION_DENIED] " in str(caught.value.details())
        assert _raw(channel, "ListFlights", b"", TOKENS["team"], True)
