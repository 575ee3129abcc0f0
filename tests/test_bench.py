"""The benchmark's pieces on tiny inputs (its timings are reported by `make bench`, never asserted)."""

import numpy as np

from qtlmnist import quantum
from tools import bench


def test_paper_loop_and_pipeline_give_the_same_counts_for_the_same_rows():
    x = np.random.default_rng(0).random((3, 5))
    np.testing.assert_array_equal(bench.paper_loop(x, 64, 9, first_row=5), bench.pipeline(x, 64, 9, first_row=5))


def test_agreement_statistics_detect_wrong_noise():
    x = np.random.default_rng(1).random((3000, 5))
    probabilities = quantum.exact_probabilities(x)
    a = bench.exact_limit(x, 1024, 1)
    b = bench.exact_limit(x, 1024, 2)
    check = bench.agreement(a, b, probabilities, 1024)
    assert check["pipeline"]["pooled_chi2_pvalue"] > 1e-4 and abs(check["pipeline"]["variance_ratio"] - 1) < 0.05
    assert check["ks_two_sample_pvalue"] > 1e-4
    too_noisy = bench.exact_limit(x, 256, 3)  # counts from 256 shots presented as 1024: 4x the variance
    bad = bench.agreement(too_noisy, b, probabilities, 1024)
    assert bad["pipeline"]["variance_ratio"] > 3 and bad["ks_two_sample_pvalue"] < 1e-6


def test_stage_times_groups_jobs_by_rule(tmp_path):
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for name, seconds, rss in (("quantum_features_train_0", 2.0, 100), ("quantum_features_train_1", 3.0, 120), ("quantum_inputs", 0.5, 50)):
        (tmp_path / f"{name}.tsv").write_text(header + f"{seconds}\t0:00:02\t{rss}\t0\t0\t0\t0\t0\t0\t0\n")
    stages = bench.stage_times(tmp_path, ["quantum_features", "quantum_inputs"])
    assert stages.to_dict("records") == [
        {"rule": "quantum_features", "jobs": 2, "wall_s": 5.0, "max_rss_mb": 120.0},
        {"rule": "quantum_inputs", "jobs": 1, "wall_s": 0.5, "max_rss_mb": 50.0},
    ]
