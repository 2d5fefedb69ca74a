#include "memory/tuner_state.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <sys/stat.h>

#include "core/abi_enum.h"
#include "core/atomic_file.h"
#include "core/crc32c.h"
#include "core/error.h"
#include "memory/bank_file.h"

namespace mome {

namespace {

constexpr char kMagic[8] = {'M', 'O', 'M', 'E', 'T', 'U', 'N', 'R'};
constexpr uint32_t kVersion = 1;

struct Header {
    TunerPosition at;
    double elapsed_seconds = 0;
    uint32_t n_facts = 0, facts_crc = 0;
    FileDigest bank;
    uint32_t optimizer = 0;
    int64_t rank = 0, n_embd = 0, key_dim = 0, key_row = 0, n_experts = 0;
};

uint32_t facts_crc(const mome_tuner& t) {
    uint32_t crc = 0;
    for (int32_t f = 0; f < t.n_facts(); ++f) {
        const FactInput in = t.fact(f);
        const int64_t head[2] = {in.n, in.answer_start};
        crc = crc32c(crc, head, sizeof head);
        crc = crc32c(crc, in.tokens, static_cast<size_t>(in.n) * sizeof(int32_t));
    }
    return crc;
}

Header header_of(const mome_tuner& t) {
    Header h;
    h.at = t.at;
    h.n_facts = static_cast<uint32_t>(t.n_facts());
    h.facts_crc = facts_crc(t);
    h.optimizer = static_cast<uint32_t>(abi_enum(t.params.optimizer));
    const mome_bank_params& p = t.bank->params;
    h.rank = p.rank, h.n_embd = t.bank->model->config.n_embd, h.key_dim = p.key_dim, h.key_row = t.key_rows.cols();
    h.n_experts = p.n_experts;
    return h;
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

// Writes fields and keeps the CRC of what it wrote.
class StateWriter {
public:
    explicit StateWriter(AtomicFileWriter& out) : out_(out) {}
    template <typename T>
    void put(const T& v) { bytes(&v, sizeof v); }
    void bytes(const void* p, size_t n) {
        crc_ = crc32c(crc_, p, n);
        out_.write(p, n);
    }
    uint32_t crc() const { return crc_; }

private:
    AtomicFileWriter& out_;
    uint32_t crc_ = 0;
};

void write_section(StateWriter& w, const SparseOptimizer& o) {
    w.put(static_cast<uint64_t>(o.states().size()));
    w.put(static_cast<uint64_t>(o.state_floats()));
    for (const auto& [key, s] : o.states()) {
        w.put(key);
        w.put(s.steps);
        w.bytes(s.m.data(), s.m.size() * sizeof(float));
        w.bytes(s.v.data(), s.v.size() * sizeof(float));
    }
}

// Reads a state file with every count bounded by the bytes left.
class StateReader {
public:
    explicit StateReader(const std::string& path) : path_(path) {
        file_ = std::fopen(path.c_str(), "rb");
        if (!file_) fail(MOME_STATUS_IO_ERROR, format("%s: cannot open the tuning state: %s", path.c_str(), std::strerror(errno)));
        struct stat st {};
        if (::fstat(::fileno(file_), &st) != 0) bad("cannot read its size");
        left_ = static_cast<uint64_t>(st.st_size);
    }
    ~StateReader() { std::fclose(file_); }
    StateReader(const StateReader&) = delete;
    StateReader& operator=(const StateReader&) = delete;

    [[noreturn]] void bad(const std::string& what) const {
        fail(MOME_STATUS_FORMAT_ERROR, format("%s: not a usable tuning state: %s", path_.c_str(), what.c_str()));
    }
    void bytes(void* p, uint64_t n) {
        if (n > left_) bad("it is truncated");
        if (n && std::fread(p, 1, n, file_) != n) bad("a read failed");
        crc_ = crc32c(crc_, p, n);
        left_ -= n;
    }
    template <typename T>
    T get() {
        T v;
        bytes(&v, sizeof v);
        return v;
    }
    uint64_t left() const { return left_; }
    uint32_t crc() const { return crc_; }

private:
    std::string path_;
    std::FILE* file_ = nullptr;
    uint64_t left_ = 0;
    uint32_t crc_ = 0;
};

struct ParsedState {
    Header h;
    std::unordered_map<uint64_t, RowState> experts, key_rows, wq;
};

void read_section(StateReader& r, const SparseOptimizer& like, uint64_t max_key, const char* what,
                  std::unordered_map<uint64_t, RowState>& out) {
    const uint64_t count = r.get<uint64_t>(), floats = r.get<uint64_t>();
    if (floats != static_cast<uint64_t>(like.state_floats()))
        r.bad(format("its %s hold %llu floats of state each; this bank and optimiser need %lld", what,
                     static_cast<unsigned long long>(floats), static_cast<long long>(like.state_floats())));
    const uint64_t entry = 16 + floats * sizeof(float);
    if (count > r.left() / entry)
        r.bad(format("%llu %s of %llu bytes do not fit in the %llu bytes left", static_cast<unsigned long long>(count), what,
                     static_cast<unsigned long long>(entry), static_cast<unsigned long long>(r.left())));
    const bool adam = like.params().kind == MOME_OPTIMIZER_ADAMW;
    for (uint64_t i = 0; i < count; ++i) {
        const uint64_t key = r.get<uint64_t>();
        RowState s;
        s.steps = r.get<int64_t>();
        if (key >= max_key) r.bad(format("%s entry %llu has key %llu, outside 0..%llu", what, static_cast<unsigned long long>(i),
                                         static_cast<unsigned long long>(key), static_cast<unsigned long long>(max_key - 1)));
        if (s.steps < 1) r.bad(format("%s entry %llu has %lld steps", what, static_cast<unsigned long long>(i), static_cast<long long>(s.steps)));
        if (adam) s.m.resize(static_cast<size_t>(floats / 2));
        s.v.resize(static_cast<size_t>(adam ? floats / 2 : floats));
        r.bytes(s.m.data(), s.m.size() * sizeof(float));
        r.bytes(s.v.data(), s.v.size() * sizeof(float));
        for (const std::vector<float>* values : {&s.m, &s.v})
            for (const float x : *values)
                if (!std::isfinite(x) || (values == &s.v && x < 0))
                    r.bad(format("%s entry %llu holds a moment that is not finite and non-negative", what, static_cast<unsigned long long>(i)));
        if (!out.emplace(key, std::move(s)).second)
            r.bad(format("%s key %llu appears twice", what, static_cast<unsigned long long>(key)));
    }
}

ParsedState read_state(const mome_tuner& t, const std::string& path) {
    StateReader r(path);
    char magic[8];
    r.bytes(magic, sizeof magic);
    if (std::memcmp(magic, kMagic, sizeof magic) != 0) r.bad("it does not start with MOMETUNR");
    const uint32_t version = r.get<uint32_t>();
    if (version != kVersion) r.bad(format("its version is %u; this library reads version %u", version, kVersion));
    ParsedState s;
    Header& h = s.h;
    h.at.epoch = r.get<int32_t>(), h.at.position = r.get<int32_t>(), h.at.updates = r.get<int64_t>();
    h.at.epoch_loss = r.get<double>(), h.at.epoch_exact = r.get<int32_t>();
    h.elapsed_seconds = r.get<double>();
    h.n_facts = r.get<uint32_t>(), h.facts_crc = r.get<uint32_t>();
    h.bank.size = r.get<uint64_t>(), h.bank.crc = r.get<uint32_t>();
    h.optimizer = r.get<uint32_t>();
    h.rank = r.get<int64_t>(), h.n_embd = r.get<int64_t>(), h.key_dim = r.get<int64_t>(), h.key_row = r.get<int64_t>();
    h.n_experts = r.get<int64_t>();
    const Header mine = header_of(t);
    if (h.optimizer != mine.optimizer)
        r.bad(format("it was written by optimizer %u; this tuner uses optimizer %u", h.optimizer, mine.optimizer));
    if (h.rank != mine.rank || h.n_embd != mine.n_embd || h.key_dim != mine.key_dim || h.key_row != mine.key_row ||
        h.n_experts != mine.n_experts)
        r.bad(format("it is for a bank of %lld experts of rank %lld over %lld dimensions (keys of %lld); this bank has %lld of rank %lld "
                     "over %lld (keys of %lld)", static_cast<long long>(h.n_experts), static_cast<long long>(h.rank),
                     static_cast<long long>(h.n_embd), static_cast<long long>(h.key_dim), static_cast<long long>(mine.n_experts),
                     static_cast<long long>(mine.rank), static_cast<long long>(mine.n_embd), static_cast<long long>(mine.key_dim)));
    if (h.at.epoch < 0 || h.at.position < 0 || h.at.updates < 0 || h.at.epoch_exact < 0 || !std::isfinite(h.at.epoch_loss) ||
        !std::isfinite(h.elapsed_seconds) || h.elapsed_seconds < 0)
        r.bad("its position is negative or not finite");
    const uint64_t key_rows = static_cast<uint64_t>(t.bank->params.router == MOME_ROUTER_KIND_PRODUCT
                                                        ? 2 * std::llround(std::sqrt(static_cast<double>(h.n_experts)))
                                                        : h.n_experts);
    read_section(r, t.experts, 2 * static_cast<uint64_t>(h.n_experts) * static_cast<uint64_t>(t.bank->params.n_layers), "expert tables",
                 s.experts);
    read_section(r, t.key_rows, key_rows, "key rows", s.key_rows);
    read_section(r, t.wq, 1, "W_q entries", s.wq);
    const uint32_t expected = r.crc();
    if (r.left() != 4) r.bad(format("%llu bytes follow its sections; 4 (the checksum) were expected", static_cast<unsigned long long>(r.left())));
    if (r.get<uint32_t>() != expected) r.bad("its checksum does not match its contents (the file is damaged)");
    return s;
}

}  // namespace

FileDigest file_digest(const std::string& path) {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
    if (!f) fail(MOME_STATUS_IO_ERROR, format("%s: cannot read: %s", path.c_str(), std::strerror(errno)));
    FileDigest d;
    std::vector<uint8_t> buffer(1 << 20);
    size_t got;
    while ((got = std::fread(buffer.data(), 1, buffer.size(), f.get())) > 0) {
        d.crc = crc32c(d.crc, buffer.data(), got);
        d.size += got;
    }
    if (std::ferror(f.get())) fail(MOME_STATUS_IO_ERROR, format("%s: read failed", path.c_str()));
    return d;
}

void tuner_checkpoint(const mome_tuner& t, const std::string& path, double elapsed_seconds) {
    require_arg(std::isfinite(elapsed_seconds) && elapsed_seconds >= 0, "elapsed_seconds must be finite and non-negative");
    const std::string next = path + ".next", state = path + ".state";
    save_bank(*t.bank, next);
    Header h = header_of(t);
    h.bank = file_digest(next);
    h.elapsed_seconds = elapsed_seconds;
    {
        AtomicFileWriter out(state);
        StateWriter w(out);
        w.bytes(kMagic, sizeof kMagic);
        w.put(kVersion);
        w.put(h.at.epoch), w.put(h.at.position), w.put(h.at.updates), w.put(h.at.epoch_loss), w.put(h.at.epoch_exact);
        w.put(h.elapsed_seconds);
        w.put(h.n_facts), w.put(h.facts_crc);
        w.put(h.bank.size), w.put(h.bank.crc);
        w.put(h.optimizer);
        w.put(h.rank), w.put(h.n_embd), w.put(h.key_dim), w.put(h.key_row), w.put(h.n_experts);
        write_section(w, t.experts);
        write_section(w, t.key_rows);
        write_section(w, t.wq);
        const uint32_t crc = w.crc();
        out.write(&crc, sizeof crc);
        // The state it replaces stays as .prev: it names the bank still at `path` until the rename below.
        if (exists(state) && ::rename(state.c_str(), (state + ".prev").c_str()) != 0)
            fail(MOME_STATUS_IO_ERROR, format("%s: cannot keep the previous state: %s", state.c_str(), std::strerror(errno)));
        out.commit();
    }
    if (::rename(next.c_str(), path.c_str()) != 0)
        fail(MOME_STATUS_IO_ERROR, format("%s: cannot move the new bank into place: %s", path.c_str(), std::strerror(errno)));
}

mome_resume_outcome tuner_resume(mome_tuner& t, const std::string& path, double& elapsed_seconds) {
    require_arg(!t.stepped, "a tuner resumes before its first step");
    const std::string state = path + ".state", prev = state + ".prev";
    const bool have_state = exists(state), have_prev = exists(prev);
    if (!have_state && !have_prev) return MOME_RESUME_OUTCOME_NO_STATE;
    const FileDigest bank = exists(path) ? file_digest(path) : FileDigest{};
    // The state, or the previous one when a kill came before the new bank's rename.
    std::optional<ParsedState> chosen;
    if (have_state) chosen = read_state(t, state);
    if ((!chosen || !(chosen->h.bank == bank)) && have_prev) {
        ParsedState older = read_state(t, prev);
        if (!chosen || older.h.bank == bank) chosen = std::move(older);
    }
    const Header mine = header_of(t);
    if (chosen->h.n_facts != mine.n_facts || chosen->h.facts_crc != mine.facts_crc) return MOME_RESUME_OUTCOME_OTHER_FACTS;
    if (!(chosen->h.bank == bank)) return MOME_RESUME_OUTCOME_OTHER_BANK;
    if (chosen->h.at.position >= t.n_facts() && t.n_facts() > 0) fail(MOME_STATUS_FORMAT_ERROR, format("%s: its position is past the facts", state.c_str()));
    t.at = chosen->h.at;
    t.experts.states() = std::move(chosen->experts);
    t.key_rows.states() = std::move(chosen->key_rows);
    t.wq.states() = std::move(chosen->wq);
    elapsed_seconds = chosen->h.elapsed_seconds;
    return MOME_RESUME_OUTCOME_RESUMED;
}

}  // namespace mome
