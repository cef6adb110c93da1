// A small Arrow Flight client in C++, built against the headers and libraries shipped in the
// pyarrow wheel (see tests/interop/test_cpp_client.py).
//
//   flight_client <grpc://host:port> <command>
//
// It lists the flights of the server, calls GetFlightInfo on a CMD descriptor holding
// <command> (a zcollection command as JSON text), calls DoGet on every endpoint, and prints one
// JSON object with the row count and a checksum per column, computed over the raw Arrow
// buffers:
//
//   - integer-backed columns (int64, timestamp, duration): the sum of the values modulo 2^64;
//   - float32 / float64 columns, plain or arrow.fixed_shape_tensor (the values of its
//     FixedSizeList storage): the sum in double of the non-NaN values in stream order, the
//     NaN count, and the sum of the IEEE bit patterns (as unsigned integers) modulo 2^64.
//
// Streams whose schema metadata has zcollection.immutable = "true" (the immutable variables)
// are reported apart and do not count as rows.

#include <arrow/api.h>
#include <arrow/extension_type.h>
#include <arrow/flight/api.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace flight = arrow::flight;

struct ColumnStats {
  std::string type;
  int64_t count = 0;  // number of values (tensor elements included)
  int64_t nulls = 0;  // null rows
  int64_t nan = 0;
  uint64_t int_sum = 0;
  uint64_t bits_sum = 0;
  double float_sum = 0.0;
  bool is_float = false;
  bool is_int = false;
};

struct StreamStats {
  int64_t rows = 0;
  int64_t batches = 0;
  std::map<std::string, ColumnStats> columns;
};

std::string JsonString(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (c < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof(buffer), "\\u%04x", c);
          out += buffer;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string JsonDouble(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.17g", value);
  return buffer;
}

template <typename Float, typename Bits>
void AddFloats(const Float* values, int64_t length, ColumnStats* stats) {
  for (int64_t i = 0; i < length; ++i) {
    Bits bits;
    std::memcpy(&bits, &values[i], sizeof(bits));
    stats->bits_sum += static_cast<uint64_t>(bits);
    if (std::isnan(values[i])) {
      ++stats->nan;
    } else {
      stats->float_sum += static_cast<double>(values[i]);
    }
  }
  stats->count += length;
}

// Add the values [offset, offset + length) of a primitive array (offset relative to the array).
arrow::Status AddPrimitive(const arrow::Array& array, int64_t offset, int64_t length,
                           ColumnStats* stats) {
  switch (array.type_id()) {
    case arrow::Type::FLOAT: {
      const auto& floats = static_cast<const arrow::FloatArray&>(array);
      stats->is_float = true;
      AddFloats<float, uint32_t>(floats.raw_values() + offset, length, stats);
      return arrow::Status::OK();
    }
    case arrow::Type::DOUBLE: {
      const auto& doubles = static_cast<const arrow::DoubleArray&>(array);
      stats->is_float = true;
      AddFloats<double, uint64_t>(doubles.raw_values() + offset, length, stats);
      return arrow::Status::OK();
    }
    case arrow::Type::INT64:
    case arrow::Type::TIMESTAMP:
    case arrow::Type::DURATION:
    case arrow::Type::DATE64: {
      // all four are stored as 64-bit signed integers
      const auto* values = array.data()->GetValues<int64_t>(1) + offset;
      stats->is_int = true;
      for (int64_t i = 0; i < length; ++i) {
        stats->int_sum += static_cast<uint64_t>(values[i]);
      }
      stats->count += length;
      return arrow::Status::OK();
    }
    default:
      return arrow::Status::NotImplemented("no checksum for type ", array.type()->ToString());
  }
}

arrow::Status AddColumn(const std::shared_ptr<arrow::Array>& column, ColumnStats* stats) {
  std::shared_ptr<arrow::Array> array = column;
  if (array->type_id() == arrow::Type::EXTENSION) {
    const auto& extension = static_cast<const arrow::ExtensionType&>(*array->type());
    stats->type = extension.extension_name() + "<" + extension.storage_type()->ToString() + ">";
    array = static_cast<const arrow::ExtensionArray&>(*array).storage();
  } else {
    stats->type = array->type()->ToString();
  }
  stats->nulls += array->null_count();
  if (array->type_id() == arrow::Type::FIXED_SIZE_LIST) {
    // a tensor row is `value_length` consecutive values of the flattened child
    const auto& list = static_cast<const arrow::FixedSizeListArray&>(*array);
    const auto& values = *list.values();
    if (values.null_count() != 0) {
      return arrow::Status::NotImplemented("null tensor elements");
    }
    for (int64_t row = 0; row < list.length(); ++row) {
      if (list.IsValid(row)) {
        ARROW_RETURN_NOT_OK(
            AddPrimitive(values, list.value_offset(row), list.value_length(), stats));
      }
    }
    return arrow::Status::OK();
  }
  if (array->null_count() != 0) {
    return arrow::Status::NotImplemented("nulls in column of type ", array->type()->ToString());
  }
  return AddPrimitive(*array, 0, array->length(), stats);
}

bool IsImmutable(const arrow::Schema& schema) {
  const auto& metadata = schema.metadata();
  if (metadata == nullptr) return false;
  auto value = metadata->Get("zcollection.immutable");
  return value.ok() && *value == "true";
}

arrow::Status ReadStream(flight::FlightStreamReader* reader, StreamStats* stats) {
  while (true) {
    ARROW_ASSIGN_OR_RAISE(flight::FlightStreamChunk chunk, reader->Next());
    if (chunk.data == nullptr) break;
    ++stats->batches;
    stats->rows += chunk.data->num_rows();
    const auto& schema = *chunk.data->schema();
    for (int i = 0; i < chunk.data->num_columns(); ++i) {
      ARROW_RETURN_NOT_OK(
          AddColumn(chunk.data->column(i), &stats->columns[schema.field(i)->name()]));
    }
  }
  return arrow::Status::OK();
}

std::string ColumnsJson(const std::map<std::string, ColumnStats>& columns) {
  std::ostringstream out;
  out << "{";
  bool first = true;
  for (const auto& [name, stats] : columns) {
    if (!first) out << ", ";
    first = false;
    out << JsonString(name) << ": {\"type\": " << JsonString(stats.type)
        << ", \"count\": " << stats.count << ", \"nulls\": " << stats.nulls;
    if (stats.is_int) out << ", \"sum\": " << stats.int_sum;
    if (stats.is_float) {
      out << ", \"sum\": " << JsonDouble(stats.float_sum) << ", \"nan\": " << stats.nan
          << ", \"bits\": " << stats.bits_sum;
    }
    out << "}";
  }
  out << "}";
  return out.str();
}

arrow::Status Run(const std::string& uri, const std::string& command) {
  ARROW_ASSIGN_OR_RAISE(auto location, flight::Location::Parse(uri));
  ARROW_ASSIGN_OR_RAISE(auto client, flight::FlightClient::Connect(location));

  std::ostringstream flights;
  ARROW_ASSIGN_OR_RAISE(auto listing, client->ListFlights());
  bool first = true;
  while (true) {
    ARROW_ASSIGN_OR_RAISE(auto flight_info, listing->Next());
    if (flight_info == nullptr) break;
    ARROW_ASSIGN_OR_RAISE(auto schema, flight_info->GetSchema(nullptr));
    flights << (first ? "" : ", ") << "{\"path\": [";
    first = false;
    const auto& path = flight_info->descriptor().path;
    for (size_t i = 0; i < path.size(); ++i) {
      flights << (i ? ", " : "") << JsonString(path[i]);
    }
    flights << "], \"columns\": [";
    for (int i = 0; i < schema->num_fields(); ++i) {
      flights << (i ? ", " : "") << JsonString(schema->field(i)->name());
    }
    flights << "]}";
  }

  auto descriptor = flight::FlightDescriptor::Command(command);
  ARROW_ASSIGN_OR_RAISE(auto info, client->GetFlightInfo(descriptor));
  StreamStats partitioned;
  StreamStats immutable;
  for (const auto& endpoint : info->endpoints()) {
    // an endpoint naming locations may be redeemed on any of them; none means this server
    std::unique_ptr<flight::FlightClient> other;
    flight::FlightClient* target = client.get();
    for (const auto& where : endpoint.locations) {
      if (where.Equals(flight::Location::ReuseConnection())) break;
      ARROW_ASSIGN_OR_RAISE(other, flight::FlightClient::Connect(where));
      target = other.get();
      break;
    }
    ARROW_ASSIGN_OR_RAISE(auto reader, target->DoGet(endpoint.ticket));
    ARROW_ASSIGN_OR_RAISE(auto schema, reader->GetSchema());
    ARROW_RETURN_NOT_OK(ReadStream(reader.get(), IsImmutable(*schema) ? &immutable : &partitioned));
  }

  std::cout << "{\"flights\": [" << flights.str() << "], \"endpoints\": " << info->endpoints().size()
            << ", \"ordered\": " << (info->ordered() ? "true" : "false")
            << ", \"total_records\": " << info->total_records()
            << ", \"rows\": " << partitioned.rows << ", \"batches\": " << partitioned.batches
            << ", \"columns\": " << ColumnsJson(partitioned.columns)
            << ", \"immutable\": " << ColumnsJson(immutable.columns) << "}" << std::endl;
  return arrow::Status::OK();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: " << argv[0] << " <grpc://host:port> <command JSON>" << std::endl;
    return 2;
  }
  arrow::Status status = Run(argv[1], argv[2]);
  if (!status.ok()) {
    std::cerr << "error: " << status.ToString() << std::endl;
    return 1;
  }
  return 0;
}
