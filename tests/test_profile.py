"""HardwareProfile budgets, presets and Footprint checks."""

from __future__ import annotations

import pytest

from gencprunex.errors import ParameterError
from gencprunex.hardware.profile import Footprint, HardwareProfile


def _footprint(ram, flash, macs):
    return Footprint(ram=ram, flash=flash, macs=macs, params=0)


def test_seed_vww_budget():
    hw = HardwareProfile.preset("seed-vww")
    assert (hw.ram, hw.flash, hw.macs) == (75 * 1024, 100 * 1024, 1_500_000)
    assert hw.fits(_footprint(72_388, 84_800, 1_400_000))
    assert hw.violations(_footprint(101_828, 313_120, 7_507_648)) == {
        "ram": 101_828 - 76_800,
        "flash": 313_120 - 102_400,
        "macs": 7_507_648 - 1_500_000,
    }


def test_unlimited_budgets_never_fail():
    assert HardwareProfile().fits(_footprint(10**9, 10**9, 10**12))
    assert HardwareProfile(ram=1000).violations(_footprint(1001, 10**9, 10**12)) == {"ram": 1}


@pytest.mark.parametrize("name", ["nano33ble", "stm32f746", "esp32s3", "rp2040", "efr32mg24", "seed-vww"])
def test_presets_are_real_boards_with_sources(name):
    hw = HardwareProfile.preset(name)
    assert hw.name == name and hw.ram > 0 and hw.flash > 0
    assert "KiB" in hw.source
    assert set(HardwareProfile.presets()) >= {name}


def test_unknown_preset_lists_known_ones():
    with pytest.raises(ParameterError, match=r"unknown preset 'stm32f74'; did you mean 'stm32f746'\?.*nano33ble"):
        HardwareProfile.preset("stm32f74")


@pytest.mark.parametrize(("field", "value"), [("ram", 0), ("flash", -5), ("macs", float("nan")), ("ram", "1k")])
def test_bad_limits_are_refused(field, value):
    with pytest.raises(ParameterError, match=field):
        HardwareProfile(**{field: value})


def test_footprint_to_dict():
    fp = Footprint(ram=1, flash=2, macs=3, params=4, layers=[{"op": "CONV_2D", "macs": 3}])
    assert fp.to_dict() == {
        "ram": 1,
        "flash": 2,
        "macs": 3,
        "params": 4,
        "layers": [{"op": "CONV_2D", "macs": 3}],
        "details": {},
    }
