#include "memory/optimizer.h"

#include <algorithm>
#include <cmath>

namespace mome {

int64_t SparseOptimizer::state_floats() const {
    return params_.kind == MOME_OPTIMIZER_ADAFACTOR ? rows_ + cols_ : 2 * rows_ * cols_;
}

void SparseOptimizer::update(RowState& s, float* param, const float* grad, double lr) const {
    const OptimizerParams& o = params_;
    const int64_t n = rows_ * cols_;
    ++s.steps;
    const double correction2 = 1.0 - std::pow(static_cast<double>(o.beta2), static_cast<double>(s.steps));
    if (o.kind == MOME_OPTIMIZER_ADAMW) {
        if (s.m.empty()) s.m.assign(static_cast<size_t>(n), 0.0f), s.v.assign(static_cast<size_t>(n), 0.0f);
        const double correction1 = 1.0 - std::pow(static_cast<double>(o.beta1), static_cast<double>(s.steps));
        for (int64_t i = 0; i < n; ++i) {
            float& m = s.m[static_cast<size_t>(i)];
            float& v = s.v[static_cast<size_t>(i)];
            m = o.beta1 * m + (1 - o.beta1) * grad[i];
            v = o.beta2 * v + (1 - o.beta2) * grad[i] * grad[i];
            const double step = m / correction1 / (std::sqrt(v / correction2) + o.epsilon);
            param[i] = static_cast<float>(param[i] - lr * (step + o.weight_decay * param[i]));
        }
        return;
    }
    // Adafactor: running means of g^2 per row (R) and per column (C).
    if (s.v.empty()) s.v.assign(static_cast<size_t>(rows_ + cols_), 0.0f);
    float* R = s.v.data();
    float* C = s.v.data() + rows_;
    std::vector<double> row_sq(static_cast<size_t>(rows_), 0.0), col_sq(static_cast<size_t>(cols_), 0.0);
    for (int64_t i = 0; i < rows_; ++i)
        for (int64_t j = 0; j < cols_; ++j) {
            const double g2 = static_cast<double>(grad[i * cols_ + j]) * grad[i * cols_ + j] + o.epsilon;
            row_sq[static_cast<size_t>(i)] += g2 / static_cast<double>(cols_);
            col_sq[static_cast<size_t>(j)] += g2 / static_cast<double>(rows_);
        }
    double mean_r = 0;
    for (int64_t i = 0; i < rows_; ++i) {
        R[i] = static_cast<float>(o.beta2 * R[i] + (1 - o.beta2) * row_sq[static_cast<size_t>(i)]);
        mean_r += R[i] / static_cast<double>(rows_);
    }
    for (int64_t j = 0; j < cols_; ++j) C[j] = static_cast<float>(o.beta2 * C[j] + (1 - o.beta2) * col_sq[static_cast<size_t>(j)]);
    std::vector<double> u(static_cast<size_t>(n));
    double sum_sq = 0;
    for (int64_t i = 0; i < rows_; ++i)
        for (int64_t j = 0; j < cols_; ++j) {
            const double v = static_cast<double>(R[i]) * C[j] / std::max(mean_r, 1e-30) / correction2;
            const double x = grad[i * cols_ + j] / std::sqrt(v + o.epsilon);
            u[static_cast<size_t>(i * cols_ + j)] = x;
            sum_sq += x * x;
        }
    const double clip = std::max(1.0, std::sqrt(sum_sq / static_cast<double>(n)));
    for (int64_t i = 0; i < n; ++i)
        param[i] = static_cast<float>(param[i] - lr * (u[static_cast<size_t>(i)] / clip + o.weight_decay * param[i]));
}

}  // namespace mome
