#!/usr/bin/env python3
"""CDK entry point: ``CDK_OUTDIR=cdk.out python app.py`` or ``cdk synth``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from missionlink_infra.stage import build_app

if __name__ == "__main__":
    app, _ = build_app()
    app.synth()
