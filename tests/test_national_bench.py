"""The national benchmark's pure helpers (the benchmark itself runs by hand: ``benchmarks/national.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import national, national_modes, national_report  # noqa: E402


def test_sheet_shape_prefers_three_assessments_per_subject() -> None:
    assert national.sheet_shape(30, 14) == (10, 3)
    assert national.sheet_shape(3, 14) == (1, 3)
    # not a multiple of 3: two assessments, then one
    assert national.sheet_shape(20, 14) == (10, 2)
    assert national.sheet_shape(13, 14) == (13, 1)
    # too many subjects for three assessments each is refused rather than silently cut by the LIMIT
    with pytest.raises(ValueError, match="--marks-per-pupil 45"):
        national.sheet_shape(45, 14)
    with pytest.raises(ValueError, match="at least 1"):
        national.sheet_shape(0, 14)


def test_schools_for_splits_a_region_in_schools_of_500() -> None:
    assert national.schools_for(1_200_000) == (2400, 500)
    assert national.schools_for(20_000) == (40, 500)
    assert national.schools_for(120) == (1, 120)
    with pytest.raises(ValueError):
        national.schools_for(0)


def test_mix_has_nine_reads_per_download_and_uses_every_request() -> None:
    reads = [(f"/read/{i}", {"Authorization": f"Bearer r{i}"}) for i in range(20)]
    downloads = [(f"/pdf/{i}", {"Authorization": f"Bearer d{i}"}) for i in range(5)]
    mix = national_modes.mix_requests(reads, downloads)
    paths = [p for p, _ in mix]
    assert len(mix) % 10 == 0
    assert sum(p.startswith("/pdf/") for p in paths) * 10 == len(mix)
    assert set(paths) == {p for p, _ in reads} | {p for p, _ in downloads}
    # one download closes every block of ten
    assert all(paths[k].startswith("/pdf/") == (k % 10 == 9) for k in range(len(paths)))
    with pytest.raises(ValueError):
        national_modes.mix_requests(reads, [])


def test_flat_memory_compares_the_two_halves_of_the_run() -> None:
    start_up_then_steady = [(0, 7.0), (1, 41.0), (2, 79.0), (3, 79.0), (4, 80.0)]
    assert national_report.flat_memory(start_up_then_steady) == (79.0, 80.0, True)
    growing = [(t, 80.0 + 20 * t) for t in range(6)]
    first, second, flat = national_report.flat_memory(growing)
    assert (first, second, flat) == (120.0, 180.0, False)
    with pytest.raises(ValueError):
        national_report.flat_memory([])


def test_roles_of_a_kept_database_and_a_foreign_name_refused() -> None:
    assert national.roles_of("madrasa_national_1002_5f6e4d") == (
        "madrasa_nationalown_1002_5f6e4d",
        "madrasa_nationalapp_1002_5f6e4d",
    )
    for name in ("postgres", "madrasa_national_x;drop", "madrasa_closebench_1_ab"):
        with pytest.raises(ValueError, match="not made by this script"):
            national.roles_of(name)


def test_scaled_is_a_linear_projection() -> None:
    assert national_report.scaled(5.0, 20_000, 1_200_000) == pytest.approx(300.0)
    with pytest.raises(ValueError):
        national_report.scaled(1.0, 0, 10)


def test_bad_options_stop_with_a_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        national.main(["--marks-per-pupil", "45"])
    assert stopped.value.code == 2
    assert "--marks-per-pupil 45" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        national.main(["--skip-generate", "postgres"])
    assert "not made by this script" in capsys.readouterr().err


def test_the_read_mix_set_ups() -> None:
    assert [m.label for m in national_modes.modes(False, None, "p:")] == ["no cache"]
    chosen = national_modes.modes(True, "postgresql://app:pw@127.0.0.1:55401/db", "p:")
    assert [m.label for m in chosen] == ["no cache", "shared cache", "shared cache + 304", "replica, no cache"]
    assert chosen[0].env == {"MADRASA_CACHE_URL": "none"}
    assert chosen[1].env["MADRASA_CACHE_PREFIX"] == "p:" and chosen[2].revalidate
    assert chosen[3].env["MADRASA_REPLICA_URLS"].endswith(":55401/db")
    assert national_modes.on_port("postgresql://app:pw@127.0.0.1:5432/db", 55401) == (
        "postgresql://app:pw@127.0.0.1:55401/db"
    )
    requests = [("/a", {"Authorization": "x"}), ("/b", {})]
    assert national_modes.with_etags(requests, {"/a": '"v1"'}) == [
        ("/a", {"Authorization": "x", "If-None-Match": '"v1"'}),
        ("/b", {}),
    ]
