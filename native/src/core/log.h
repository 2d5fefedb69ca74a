// The engine's messages (mome_set_log_callback): one process-wide sink, by default stderr for
// warnings and errors.
#pragma once

#include <string>

#include "mome.h"

namespace mome {

void set_log_callback(mome_log_callback callback, void* user_data);

void log_message(mome_log_level level, const std::string& message);

inline void log_info(const std::string& message) { log_message(MOME_LOG_LEVEL_INFO, message); }
inline void log_warn(const std::string& message) { log_message(MOME_LOG_LEVEL_WARN, message); }

}  // namespace mome
