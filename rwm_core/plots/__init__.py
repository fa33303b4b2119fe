"""One function per figure; matplotlib (Agg), PDF out, written atomically. :mod:`.dispatch` draws one by name."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
