"""Domain terms from the catalogue, as a Whisper prompt or hotwords: measured by `benchmarks/asr.py`, not used by the
server (the server prompts with the greeting, `voice.asr_prompt.catalogue_prompt`; docs/benchmarks.md has both).

The terms are chosen from prompts/, never listed by hand:

- a term is a word callers use in an intent's examples *and* the agent uses in a reply (or a keyword names it).
  Replies are written with care, while examples deliberately include recogniser mistakes ("my bell is too high"),
  which must not be taught to the recogniser;
- it appears in the examples of at most `MAX_INTENTS_PER_TERM` intents: words every intent uses ("want", "phone",
  "please") tell Whisper nothing about the domain;
- stop words, fillers and words under three letters are left out; the most frequent terms come first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from voice.prompts import Catalogue
from voice.text import normalize

MAX_TERMS = 40
"""Terms in the prompt. Whisper keeps at most 223 prompt tokens; 40 words stay well inside that."""
MAX_INTENTS_PER_TERM = 3
"""A word in the examples of more intents than this is too general to be a domain term."""
_MIN_LETTERS = 3
_STOP_WORDS: Mapping[str, frozenset[str]] = {"en": frozenset(ENGLISH_STOP_WORDS)}


def domain_terms(
    examples_by_intent: Mapping[str, Iterable[str]],
    agent_texts: Iterable[str],
    language: str,
    max_terms: int = MAX_TERMS,
) -> list[str]:
    """The words that mark the domain, most frequent first (see the module docstring for the rules).

    Args:
        examples_by_intent: caller phrasings per intent.
        agent_texts: what the agent says (replies) and keyword phrases: the spellings to trust.
        language: for normalisation and stop words.
        max_terms: how many to return at most.

    Returns:
        Normalised single words; ties in frequency are broken alphabetically, so the result is reproducible.
    """
    counts: Counter[str] = Counter()
    intents_using: dict[str, set[str]] = {}
    for intent, examples in examples_by_intent.items():
        for example in examples:
            for word in normalize(example, language).split():
                counts[word] += 1
                intents_using.setdefault(word, set()).add(intent)
    trusted = {word for text in agent_texts for word in normalize(text, language).split()}
    stop_words = _STOP_WORDS.get(language, frozenset())
    candidates = [
        word
        for word in counts
        if word in trusted
        and len(intents_using[word]) <= MAX_INTENTS_PER_TERM
        and len(word) >= _MIN_LETTERS
        and word.isalpha()
        and word not in stop_words
    ]
    return sorted(candidates, key=lambda word: (-counts[word], word))[:max_terms]


def prompt_from_terms(terms: Iterable[str]) -> str:
    """The terms as one comma-separated line, the shape of text Whisper continues most naturally."""
    terms = list(terms)
    return ", ".join(terms) + "." if terms else ""


def terms_prompt(catalogue: Catalogue, max_terms: int = MAX_TERMS) -> str:
    """The catalogue's domain terms as one line (empty when it yields none)."""
    agent_texts = [intent.reply for intent in catalogue.intents.values()]
    agent_texts += [keyword for intent in catalogue.intents.values() for keyword in intent.keywords]
    examples = {name: intent.examples for name, intent in catalogue.intents.items()}
    return prompt_from_terms(domain_terms(examples, agent_texts, catalogue.language, max_terms))
