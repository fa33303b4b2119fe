"""One function per figure; matplotlib (Agg), PDF out, written atomically."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
