// The event log: how session events reach standard error, as prose lines (--log-format text) or as
// one JSON object per line (--log-format json) that scripts and tests read instead of prose.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "session/events.hpp"
#include "transport/transport_error.hpp"

namespace tether::transport {

enum class LogFormat : std::uint8_t { kText, kJson };

// "text" or "json"; nullopt for anything else.
[[nodiscard]] std::optional<LogFormat> parse_log_format(std::string_view text);

// Makes spdlog's default logger (set it up first: sinks and level) write `format`. With kJson every
// line is one JSON object: session events as json_event() builds them, any other message as
// {"time", "level", "message"}; strings are escaped by the JSON encoder (ASCII output, \uXXXX).
void set_log_format(LogFormat format);
[[nodiscard]] LogFormat log_format();

// The full session id in lowercase hex (32 digits), as `tether status --json` prints it.
[[nodiscard]] std::string session_hex(const session::SessionId& id);

// The JSON object of a lifecycle event (established, suspended, resumed, closed) of session `id` on
// `side` ("client" or "server"), or nullopt for any other event. Members: "event", "side",
// "session", and the event's own: "cause" (suspended); "downtime_ms", "bytes_replayed" (resumed);
// "reason", "by_peer", "transient", "unacknowledged_bytes" (closed). Enum values are the names
// PROTOCOL.md uses (unknown-session, heartbeat-timeout...).
[[nodiscard]] std::optional<nlohmann::ordered_json> lifecycle_json(std::string_view side,
                                                                   const session::SessionId& id,
                                                                   const session::Event& event);

// With kJson, writes `object` (which must have an "event" member) as one line at `level`, with
// "time" and "level" added; with kText, nothing: the caller writes its prose line instead.
void json_event(spdlog::level::level_enum level, const nlohmann::ordered_json& object);

// Writes lifecycle_json() of the event with json_event() (suspended as a warning); false, writing
// nothing, when it is not a lifecycle event.
bool log_lifecycle_json(std::string_view side, const session::SessionId& id,
                        const session::Event& event);

// Logs a failed connect of the client: prose, or {"event": "connect-failed", "error": kind,
// "message"}.
void log_connect_failure(const TransportError& error);

}  // namespace tether::transport
