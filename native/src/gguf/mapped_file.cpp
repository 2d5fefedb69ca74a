#include "gguf/mapped_file.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

namespace mome {

MappedFile::MappedFile(const std::string& path) : path_(path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(MOME_STATUS_IO_ERROR, format("%s: cannot open: %s", path.c_str(), std::strerror(errno)));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        fail(MOME_STATUS_IO_ERROR, format("%s: cannot stat: %s", path.c_str(), std::strerror(err)));
    }
    if (S_ISDIR(st.st_mode)) {
        ::close(fd);
        fail(MOME_STATUS_IO_ERROR, format("%s: is a directory, not a file", path.c_str()));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        fail(MOME_STATUS_IO_ERROR, format("%s: is not a regular file", path.c_str()));
    }
    size_ = static_cast<uint64_t>(st.st_size);
    if (size_ > 0) {
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            const int err = errno;
            ::close(fd);
            fail(MOME_STATUS_IO_ERROR, format("%s: cannot map: %s", path.c_str(), std::strerror(err)));
        }
        data_ = static_cast<const uint8_t*>(p);
    }
    ::close(fd);
}

MappedFile::~MappedFile() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace mome
