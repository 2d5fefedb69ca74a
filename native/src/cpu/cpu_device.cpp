#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <unistd.h>

#include "core/devices.h"

namespace mome {

mome_device_info cpu_device_info() {
    mome_device_info info{};
    info.backend = MOME_BACKEND_CPU;
    info.index = 0;
    std::string name = "CPU";
    std::ifstream cpuinfo("/proc/cpuinfo");
    for (std::string line; std::getline(cpuinfo, line);) {
        if (line.rfind("model name", 0) == 0) {
            const size_t colon = line.find(':');
            if (colon != std::string::npos) name = line.substr(line.find_first_not_of(' ', colon + 1));
            break;
        }
    }
    std::strncpy(info.name, name.c_str(), MOME_DEVICE_NAME_SIZE - 1);
    const long pages = ::sysconf(_SC_PHYS_PAGES), page_size = ::sysconf(_SC_PAGESIZE);
    info.total_memory = pages > 0 && page_size > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size) : 0;
    info.compute_units = static_cast<int32_t>(std::thread::hardware_concurrency());
    return info;
}

}  // namespace mome
