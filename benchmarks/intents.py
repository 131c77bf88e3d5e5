"""Intent accuracy, escalation recall and false transfers on the held-out evaluation sets.

    python benchmarks/intents.py [--lang en nl] [--set first fresh final] [--show-misses]

The three sets in benchmarks/data/ were each written by someone who saw neither the catalogue's training examples
nor the other sets. "first" and "fresh" were used for error analysis while the catalogue and thresholds were
tuned, so they flatter; "final" was written last and never used for tuning: it is the honest figure.
Cases that happen to equal a training example are removed from the sets (tests/test_evaluation.py checks it).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from qa.evaluation import EvalReport, evaluate, load_eval_set
from telephony.settings import DEFAULT_PROMPTS_DIR
from voice.dialogue import DialogueEngine

DATA_DIR = Path(__file__).resolve().parent / "data"
SET_FILES = {
    "first": "intent_eval_{language}.yaml",
    "fresh": "intent_eval_fresh_{language}.yaml",
    "final": "intent_eval_final_{language}.yaml",
}


def _print_misses(report: EvalReport) -> None:
    for case, decision in report.misses:
        print(
            f"    miss: {case.text!r} expected {case.intent}, got {decision.intent} "
            f"({decision.confidence:.2f}, {decision.rule})"
        )
    for case in report.missed_transfers:
        print(f"    NOT TRANSFERRED: {case.text!r} ({case.intent})")
    for case in report.false_transfers:
        print(f"    false transfer: {case.text!r} ({case.intent})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lang", nargs="+", default=["en", "nl"], choices=["en", "nl"])
    parser.add_argument("--set", nargs="+", default=list(SET_FILES), choices=list(SET_FILES), dest="sets")
    parser.add_argument("--prompts", type=Path, default=DEFAULT_PROMPTS_DIR)
    parser.add_argument("--show-misses", action="store_true", help="list every case read wrongly")
    args = parser.parse_args()

    print(
        f"{'set':<7}{'lang':<5}{'cases':>6}{'accuracy':>10}{'escalation recall':>19}{'false transfers':>17}"
        f"{'train s':>9}{'ms/turn':>9}"
    )
    for language in args.lang:
        started = time.perf_counter()
        engine = DialogueEngine.from_prompts(args.prompts, language)
        trained_s = time.perf_counter() - started
        for name in args.sets:
            cases = load_eval_set(DATA_DIR / SET_FILES[name].format(language=language))
            # A fresh engine per set, so the classifier's cache does not make the second set look faster.
            engine = DialogueEngine(engine.catalogue)
            started = time.perf_counter()
            report = evaluate(engine, cases)
            per_turn_ms = (time.perf_counter() - started) / max(len(cases), 1) * 1000
            recall = f"{report.must_transfer_transferred}/{report.must_transfer} {report.escalation_recall:.1%}"
            false = f"{report.ordinary_transferred}/{report.ordinary} {report.false_transfer_rate:.1%}"
            print(
                f"{name:<7}{language:<5}{report.cases:>6}{report.accuracy:>10.1%}{recall:>19}{false:>17}"
                f"{trained_s:>9.2f}{per_turn_ms:>9.1f}"
            )
            if args.show_misses:
                _print_misses(report)


if __name__ == "__main__":
    main()
