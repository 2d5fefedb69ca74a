// Memory tuning's optimiser: state only for the rows (experts, key rows, W_q) it has updated,
// each with its own step count (a "lazy" sparse optimiser: an expert that is not routed to
// keeps its moments as they were).
//   AdamW:     m <- b1 m + (1-b1) g ; v <- b2 v + (1-b2) g^2
//              p <- p - lr (m / (1-b1^t) / (sqrt(v / (1-b2^t)) + eps) + wd p)
//   Adafactor: a matrix [rows x cols]'s second moment factored into per-row and per-column
//              means R, C (Shazeer & Stern 2018): v_ij ~ R_i C_j / mean(R), no first moment,
//              the update clipped to RMS 1:
//              u = g / sqrt(v / (1-b2^t) + eps) ; u /= max(1, rms(u)) ; p <- p - lr (u + wd p)
//   So an expert's A or B [rank x n_embd] costs 2 x rank x n_embd floats of AdamW state, or
//   rank + n_embd of Adafactor state.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "mome.h"

namespace mome {

struct OptimizerParams {
    mome_optimizer kind = MOME_OPTIMIZER_ADAMW;
    float beta1 = 0.9f, beta2 = 0.999f, epsilon = 1e-8f, weight_decay = 0.0f;
};

// The state of one parameter matrix.
struct RowState {
    int64_t steps = 0;
    std::vector<float> m, v;  // AdamW: [rows x cols] each; Adafactor: m empty, v = R [rows] then C [cols]
};

class SparseOptimizer {
public:
    explicit SparseOptimizer(const OptimizerParams& params, int64_t rows, int64_t cols) : params_(params), rows_(rows), cols_(cols) {}

    // One step of the matrix `key` (param and grad are [rows x cols]).
    void update(uint64_t key, float* param, const float* grad, double lr) { update(state(key), param, grad, lr); }
    // The state of `key`, made when new (its address stays valid while no state is erased):
    // states made one thread at a time can then be stepped on several threads, each its own.
    RowState& state(uint64_t key) { return states_[key]; }
    void update(RowState& s, float* param, const float* grad, double lr) const;

    const OptimizerParams& params() const { return params_; }
    int64_t rows() const { return rows_; }
    int64_t cols() const { return cols_; }
    // Floats of state per matrix.
    int64_t state_floats() const;
    const std::unordered_map<uint64_t, RowState>& states() const { return states_; }
    std::unordered_map<uint64_t, RowState>& states() { return states_; }

private:
    OptimizerParams params_;
    int64_t rows_, cols_;
    std::unordered_map<uint64_t, RowState> states_;
};

}  // namespace mome
