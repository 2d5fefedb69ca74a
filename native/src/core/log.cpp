#include "core/log.h"

#include <cstdio>
#include <mutex>


namespace mome {

namespace {

struct LogSink {
    mome_log_callback callback = nullptr;
    void* user_data = nullptr;
};

std::mutex g_log_mutex;
LogSink g_log_sink;

void log_to_stderr(mome_log_level level, const char* message, void*) {
    if (level < MOME_LOG_LEVEL_WARN) return;
    std::fprintf(stderr, "mome: %s: %s\n", level == MOME_LOG_LEVEL_WARN ? "warning" : "error", message);
}

}  // namespace

void set_log_callback(mome_log_callback callback, void* user_data) {
    std::lock_guard<std::mutex> lock(g_log_mutex);
    g_log_sink = LogSink{callback, user_data};
}

void log_message(mome_log_level level, const std::string& message) {
    LogSink sink;
    {
        std::lock_guard<std::mutex> lock(g_log_mutex);
        sink = g_log_sink;
    }
    if (sink.callback) sink.callback(level, message.c_str(), sink.user_data);
    else log_to_stderr(level, message.c_str(), nullptr);
}

}  // namespace mome
