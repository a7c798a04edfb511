"""Three reports built once per session (BN ResNet, unnormalized ResNet with --fix, and a
converted one) and the browser that opens them."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

import signalprop as sp
from signalprop.report import build_report

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "out" / "test-artifacts" / "report"  # /out/ is git-ignored
CHROMIUM = Path("/usr/bin/chromium")


def _resnet(norm):
    torch.manual_seed(0)
    return sp.models.resnetv2([2, 2], norm=norm, stem="cifar", width=0.25, num_classes=10)


@pytest.fixture(scope="session")
def reports():
    """name -> ReportResult, written under out/test-artifacts/report/NAME/."""
    x = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    converted, _ = sp.convert.to_normfree(_resnet("bn"))
    models = {"bn": (_resnet("bn"), False), "none": (_resnet("none"), True),
              "converted": (converted, False)}
    out = {}
    for name, (model, fix) in models.items():
        shutil.rmtree(ARTIFACTS / name, ignore_errors=True)
        out[name] = build_report(model, x, ARTIFACTS / name, fix=fix, label=f"resnetv2 {name}")
    return out


def _install_chromium() -> str:
    """Debian's chromium via apt-get (we run as root in CI); the reason on failure."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "not root or no apt-get: install Debian's 'chromium' package by hand"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update"],
                ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if proc.returncode != 0:
            return f"{' '.join(cmd)} failed: {proc.stderr.strip()[-500:]}"
    return ""


@pytest.fixture(scope="session")
def browser():
    """Headless Debian chromium driven by Playwright (never Playwright's own download)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser test needs Playwright: pip install -e '.[test]'")
    if not CHROMIUM.exists():
        reason = _install_chromium()
        if not CHROMIUM.exists():
            pytest.fail(f"{CHROMIUM} is missing and could not be installed ({reason})")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                               args=["--no-sandbox"])
        yield b
        b.close()
