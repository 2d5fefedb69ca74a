// Crash-safe file replacement: write to a temporary file in the target's folder, fsync,
// rename over the target, fsync the folder. A failure or crash at any point leaves the
// previous target (if any) untouched.
#pragma once

#include <cstddef>
#include <cstdio>
#include <functional>
#include <string>

namespace mome {

class AtomicFileWriter {
public:
    // Throws mome::Error (IO_ERROR) naming `path` when the folder is not writable.
    explicit AtomicFileWriter(const std::string& path);
    ~AtomicFileWriter();  // removes the temporary file unless commit() succeeded
    AtomicFileWriter(const AtomicFileWriter&) = delete;
    AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

    void write(const void* data, size_t size);
    void pad_to(uint64_t alignment);
    uint64_t position() const { return position_; }
    void commit();

private:
    std::string path_;
    std::string temp_path_;
    std::FILE* file_ = nullptr;
    uint64_t position_ = 0;
    bool committed_ = false;
};

}  // namespace mome
