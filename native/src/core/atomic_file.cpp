#include "core/atomic_file.h"

#include "core/abort.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "core/error.h"

namespace mome {

namespace {
std::string folder_of(const std::string& path) {
    const size_t slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}
}  // namespace

AtomicFileWriter::AtomicFileWriter(const std::string& path) : path_(path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
        fail(MOME_STATUS_IO_ERROR, format("%s: is a directory, cannot write a file there", path.c_str()));
    std::vector<char> name(path.begin(), path.end());
    const char suffix[] = ".tmp-XXXXXX";
    name.insert(name.end(), suffix, suffix + sizeof suffix);
    const int fd = ::mkstemp(name.data());
    if (fd < 0) fail(MOME_STATUS_IO_ERROR, format("%s: cannot create a file in %s: %s", path.c_str(),
                                                   folder_of(path).c_str(), std::strerror(errno)));
    temp_path_ = name.data();
    ::fchmod(fd, 0644);
    file_ = ::fdopen(fd, "wb");
    if (!file_) {
        ::close(fd);
        ::unlink(temp_path_.c_str());
        fail(MOME_STATUS_IO_ERROR, format("%s: cannot open for writing", temp_path_.c_str()));
    }
}

AtomicFileWriter::~AtomicFileWriter() {
    if (file_) std::fclose(file_);
    if (!committed_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void AtomicFileWriter::write(const void* data, size_t size) {
    check_abort();  // before the commit, stopping leaves the previous file as it was
    if (size == 0) return;
    if (std::fwrite(data, 1, size, file_) != size)
        fail(MOME_STATUS_IO_ERROR, format("%s: write failed: %s", path_.c_str(), std::strerror(errno)));
    position_ += size;
}

void AtomicFileWriter::pad_to(uint64_t alignment) {
    static const char zeros[64] = {};
    while (position_ % alignment != 0) {
        const uint64_t n = std::min<uint64_t>(sizeof zeros, alignment - position_ % alignment);
        write(zeros, n);
    }
}

void AtomicFileWriter::commit() {
    check_abort();
    if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0)
        fail(MOME_STATUS_IO_ERROR, format("%s: cannot flush to disk: %s", path_.c_str(), std::strerror(errno)));
    const int rc = std::fclose(file_);
    file_ = nullptr;
    if (rc != 0) fail(MOME_STATUS_IO_ERROR, format("%s: close failed: %s", path_.c_str(), std::strerror(errno)));
    if (::rename(temp_path_.c_str(), path_.c_str()) != 0)
        fail(MOME_STATUS_IO_ERROR, format("%s: cannot replace: %s", path_.c_str(), std::strerror(errno)));
    committed_ = true;
    const int dir = ::open(folder_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        ::fsync(dir);
        ::close(dir);
    }
}

}  // namespace mome
