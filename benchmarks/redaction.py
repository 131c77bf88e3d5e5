"""Recall and false redactions of voice.redaction.finder on a corpus (by default benchmarks/data/redaction_corpus.yaml).

    python benchmarks/redaction.py [--lang en nl] [--repeat 20] [--show-misses] [--corpus PATH]

Per language and kind: planted items redacted when their turn is first redacted (recall: nothing of them was ever
shown) and items whose final spans have the right kind (labelled: after later turns refined earlier ones). Per
language: ordinary turns changed by `redact` and by a `RedactionBuffer` (which also masks trailing digits that may
start a number read over several turns), in all and leaving out the deliberate masking of long numbers (seven or more
digits that fail every check are masked as "[number]", because a card number with a misheard digit fails Luhn too).
Then the time per turn: minimum over `--repeat` runs of each turn, mean and 95th percentile over turns. Figures
only: nothing here asserts (tests/test_redaction.py does).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.redaction_corpus import CORPUS, Case, load_corpus, score
from voice.redaction import LANGUAGES, Kind, redact


def _timings_us(cases: Sequence[Case], repeat: int) -> np.ndarray:
    timings = []
    for case in cases:
        for text in case.turns:
            best = float("inf")
            for _ in range(repeat):
                started = time.perf_counter()
                redact(text, case.language)
                best = min(best, time.perf_counter() - started)
            timings.append(best * 1e6)
    return np.array(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lang", nargs="+", default=list(LANGUAGES), choices=LANGUAGES)
    parser.add_argument("--repeat", type=int, default=20, help="runs of each turn for the timing (minimum taken)")
    parser.add_argument("--show-misses", action="store_true", help="list missed items and changed ordinary turns")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="corpus file (default: %(default)s)")
    args = parser.parse_args()

    planted, ordinary = load_corpus(args.corpus)
    planted = [case for case in planted if case.language in args.lang]
    ordinary = [case for case in ordinary if case.language in args.lang]
    report = score(planted, ordinary)

    print(f"{'lang':<5}{'kind':<15}{'items':>6}{'recall':>15}{'labelled':>15}")
    for language in args.lang:
        for kind in Kind:
            figures = report.kinds.get((language, kind))
            if figures is None:
                continue
            recall = f"{figures.recalled}/{figures.items} {figures.recalled / figures.items:.0%}"
            labelled = f"{figures.labelled}/{figures.items} {figures.labelled / figures.items:.0%}"
            print(f"{language:<5}{kind.value:<15}{figures.items:>6}{recall:>15}{labelled:>15}")
            if args.show_misses:
                for miss in figures.misses:
                    print(f"      {miss}")
    print()
    # Ordinary turns changed, all of them and leaving out long numbers masked on purpose ("[number]": seven or more
    # digits that fail every check, such as an order number, as a card number with a misheard digit would).
    header = f"{'lang':<5}{'ordinary':>9}{'changed by redact':>20}{'changed by buffer':>20}"
    print(header + f"{'other, redact':>16}{'other, buffer':>16}")
    for language in args.lang:
        total = report.ordinary.get(language, 0)
        cells = []
        for other in (False, True):
            for buffer in (False, True):
                count = report.count(language, buffer=buffer, other=other)
                cells.append(f"{count} {report.false_rate(language, buffer=buffer, other=other):.1%}")
        print(f"{language:<5}{total:>9}{cells[0]:>20}{cells[1]:>20}{cells[2]:>16}{cells[3]:>16}")
        if args.show_misses:
            for name, changed in (("redact", report.changed_by_redact), ("buffer", report.changed_by_buffer)):
                for line in changed.get(language, []):
                    why = "generic long-number masking (deliberate)" if line in report.long_numbers else "other"
                    print(f"      {name}, {why}: {line}")
    print()
    redact("warm-up 4111 1111 1111 1111", "en")
    for name, cases in (("planted", planted), ("ordinary", ordinary)):
        timings = _timings_us(cases, args.repeat)
        print(
            f"time per turn, {name:<9} {len(timings):>4} turns: mean {timings.mean():7.0f} us   "
            f"p95 {np.percentile(timings, 95):7.0f} us   max {timings.max():7.0f} us"
        )


if __name__ == "__main__":
    main()
