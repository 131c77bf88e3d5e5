"""Intent accuracy, escalation recall and false transfers on the held-out evaluation sets.

    python benchmarks/intents.py [--lang en nl] [--show-misses]

The sets in benchmarks/data/ were written separately from the catalogue's training examples.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from telephony.settings import DEFAULT_PROMPTS_DIR
from voice.dialogue import DialogueEngine
from voice.evaluation import evaluate, load_eval_set

DATA_DIR = Path(__file__).resolve().parent / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lang", nargs="+", default=["en", "nl"], choices=["en", "nl"])
    parser.add_argument("--prompts", type=Path, default=DEFAULT_PROMPTS_DIR)
    parser.add_argument("--show-misses", action="store_true", help="list every case read wrongly")
    args = parser.parse_args()

    print(
        f"{'lang':<5}{'cases':>6}{'accuracy':>10}{'esc. recall':>13}{'false transfer':>16}{'train s':>9}{'ms/turn':>9}"
    )
    for language in args.lang:
        started = time.perf_counter()
        engine = DialogueEngine.from_prompts(args.prompts, language)
        trained = time.perf_counter() - started
        cases = load_eval_set(DATA_DIR / f"intent_eval_{language}.yaml")
        started = time.perf_counter()
        report = evaluate(engine, cases)
        per_turn_ms = (time.perf_counter() - started) / max(len(cases), 1) * 1000
        print(
            f"{language:<5}{report.cases:>6}{report.accuracy:>10.1%}"
            f"{report.must_transfer_transferred:>6}/{report.must_transfer:<3} {report.escalation_recall:>4.0%}"
            f"{report.ordinary_transferred:>6}/{report.ordinary:<3} {report.false_transfer_rate:>5.1%}"
            f"{trained:>9.2f}{per_turn_ms:>9.1f}"
        )
        if args.show_misses:
            for case, decision in report.misses:
                print(
                    f"    miss: {case.text!r} expected {case.intent}, got {decision.intent} "
                    f"({decision.confidence:.2f}, {decision.rule})"
                )
            for case in report.missed_transfers:
                print(f"    NOT TRANSFERRED: {case.text!r} ({case.intent})")
            for case in report.false_transfers:
                print(f"    false transfer: {case.text!r} ({case.intent})")


if __name__ == "__main__":
    main()
