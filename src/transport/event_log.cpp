#include "transport/event_log.hpp"

#include <fmt/format.h>
#include <spdlog/formatter.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <string>

#include "transport/log_safety.hpp"
#include "wire/frame.hpp"

namespace tether::transport {
namespace {

// The logger json_event() writes through: the default logger's sinks, under this name, so that
// the formatter knows its payload is already a JSON object.
constexpr std::string_view kEventLoggerName = "tether.event";

LogFormat current_format = LogFormat::kText;
std::shared_ptr<spdlog::logger> event_logger;

std::string utc_time(std::chrono::system_clock::time_point time) {
  const auto since_epoch = time.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  const auto milliseconds =
      std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds).count();
  const std::time_t whole = static_cast<std::time_t>(seconds.count());
  std::tm parts{};
  ::gmtime_r(&whole, &parts);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", parts.tm_year + 1900,
                     parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec,
                     milliseconds);
}

std::string dump(const nlohmann::ordered_json& value) {
  // ASCII only (\uXXXX escapes); bytes that are not UTF-8 become U+FFFD instead of an exception.
  return value.dump(-1, ' ', /*ensure_ascii=*/true,
                    nlohmann::ordered_json::error_handler_t::replace);
}

// One JSON object per line: {"time", "level", then the event's members} for the event logger,
// {"time", "level", "message"} for any other message.
class JsonLineFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& message, spdlog::memory_buf_t& out) override {
    nlohmann::ordered_json head;
    head["time"] = utc_time(message.time);
    const auto level = spdlog::level::to_string_view(message.level);
    head["level"] = std::string(level.data(), level.size());
    std::string line;
    const std::string_view payload(message.payload.data(), message.payload.size());
    if (std::string_view(message.logger_name.data(), message.logger_name.size()) ==
            kEventLoggerName &&
        payload.size() > 2 && payload.front() == '{') {
      // The payload is a JSON object of our own making (json_event): splice the head's members in.
      line = dump(head);
      line.pop_back();  // the closing brace
      line += ',';
      line.append(payload.substr(1));
    } else {
      head["message"] = std::string(payload);
      line = dump(head);
    }
    line += '\n';
    out.append(line.data(), line.data() + line.size());
  }
  [[nodiscard]] std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonLineFormatter>();
  }
};

}  // namespace

std::optional<LogFormat> parse_log_format(std::string_view text) {
  if (text == "text") return LogFormat::kText;
  if (text == "json") return LogFormat::kJson;
  return std::nullopt;
}

void set_log_format(LogFormat format) {
  current_format = format;
  event_logger.reset();
  if (format != LogFormat::kJson) return;
  auto logger = spdlog::default_logger();
  logger->set_formatter(std::make_unique<JsonLineFormatter>());
  event_logger = std::make_shared<spdlog::logger>(std::string(kEventLoggerName),
                                                  logger->sinks().begin(), logger->sinks().end());
  event_logger->set_level(logger->level());
}

LogFormat log_format() {
  return current_format;
}

std::string session_hex(const session::SessionId& id) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text;
  text.reserve(id.size() * 2);
  for (const auto byte : id) {
    const auto value = static_cast<unsigned>(byte);
    text += kHex[value >> 4];
    text += kHex[value & 15];
  }
  return text;
}

std::optional<nlohmann::ordered_json> lifecycle_json(std::string_view side,
                                                     const session::SessionId& id,
                                                     const session::Event& event) {
  namespace events = session::events;
  nlohmann::ordered_json object;
  const auto start = [&](const char* name) {
    object["event"] = name;
    object["side"] = std::string(side);
    object["session"] = session_hex(id);
  };
  if (std::holds_alternative<events::Established>(event)) {
    start("established");
  } else if (const auto* suspended = std::get_if<events::Suspended>(&event)) {
    start("suspended");
    object["cause"] = session::to_string(suspended->cause);
  } else if (const auto* resumed = std::get_if<events::Resumed>(&event)) {
    start("resumed");
    object["downtime_ms"] =
        std::chrono::duration_cast<std::chrono::milliseconds>(resumed->downtime).count();
    object["bytes_replayed"] = resumed->bytes_replayed;
  } else if (const auto* closed = std::get_if<events::Closed>(&event)) {
    start("closed");
    object["reason"] = std::string(wire::to_string(closed->reason));
    object["by_peer"] = closed->by_peer;
    object["transient"] = closed->transient;
    object["unacknowledged_bytes"] = closed->unacknowledged_bytes;
    if (!closed->message.empty()) object["message"] = escape_for_log(closed->message);
  } else if (const auto* reauthenticated = std::get_if<events::Reauthenticated>(&event)) {
    start("reauthenticated");
    object["principal"] = escape_for_log(reauthenticated->principal);
    object["mechanism"] = escape_for_log(reauthenticated->mechanism);
    if (reauthenticated->lifetime) {
      object["lifetime_ms"] =
          std::chrono::duration_cast<std::chrono::milliseconds>(*reauthenticated->lifetime).count();
    }
    object["latency_us"] =
        std::chrono::duration_cast<std::chrono::microseconds>(reauthenticated->latency).count();
  } else if (const auto* passed = std::get_if<events::LifetimePassed>(&event)) {
    start("lifetime-passed");
    object["audit_only"] = passed->audit_only;
  } else {
    return std::nullopt;
  }
  return object;
}

void json_event(spdlog::level::level_enum level, const nlohmann::ordered_json& object) {
  if (current_format != LogFormat::kJson || event_logger == nullptr) return;
  event_logger->log(level, "{}", dump(object));
}

bool log_lifecycle_json(std::string_view side, const session::SessionId& id,
                        const session::Event& event) {
  auto object = lifecycle_json(side, id, event);
  if (!object) return false;
  const bool warning = std::holds_alternative<session::events::Suspended>(event) ||
                       std::holds_alternative<session::events::LifetimePassed>(event);
  json_event(warning ? spdlog::level::warn : spdlog::level::info, *object);
  return true;
}

void log_connect_failure(const TransportError& error) {
  if (current_format == LogFormat::kJson) {
    nlohmann::ordered_json object;
    object["event"] = "connect-failed";
    object["side"] = "client";
    object["error"] = std::string(to_string(error.kind));
    object["message"] = error.message;
    json_event(spdlog::level::warn, object);
    return;
  }
  spdlog::warn("client {}", error.message);
}

}  // namespace tether::transport
