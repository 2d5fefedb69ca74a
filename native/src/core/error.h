// Errors inside the engine: C++ code throws mome::Error; the ABI layer turns it into a
// mome_status plus a thread-local message. Nothing is thrown across the C ABI.
#pragma once

#include <stdexcept>
#include <string>

#include "mome.h"

namespace mome {

class Error : public std::runtime_error {
public:
    Error(mome_status status, const std::string& message)
        : std::runtime_error(message), status_(status) {}
    mome_status status() const { return status_; }

private:
    mome_status status_;
};

// printf-style message builder, so call sites read as one line.
std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

[[noreturn]] void fail(mome_status status, const std::string& message);

// Thread-local last error, read through mome_last_error().
void set_last_error(const std::string& message);
void clear_last_error();
const char* last_error();

// Runs `body` and converts anything it throws into a status and a last-error message.
template <typename Body>
mome_status guarded(Body&& body) noexcept {
    try {
        clear_last_error();
        body();
        return MOME_STATUS_OK;
    } catch (const Error& e) {
        set_last_error(e.what());
        return e.status();
    } catch (const std::bad_alloc&) {
        set_last_error("out of memory");
        return MOME_STATUS_OUT_OF_MEMORY;
    } catch (const std::exception& e) {
        set_last_error(std::string("internal error: ") + e.what());
        return MOME_STATUS_INTERNAL_ERROR;
    } catch (...) {
        set_last_error("internal error: unknown exception");
        return MOME_STATUS_INTERNAL_ERROR;
    }
}

// Argument checks at the ABI boundary.
inline void require_arg(bool ok, const char* what) {
    if (!ok) fail(MOME_STATUS_INVALID_ARGUMENT, std::string("invalid argument: ") + what);
}

}  // namespace mome
