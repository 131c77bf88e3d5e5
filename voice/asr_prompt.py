"""The Whisper prompt, built from the catalogue at start-up: the greeting (and, measured only, the domain terms).

Whisper takes a prompt as text that came before the utterance, and words in it become more likely. Two prompts were
measured on held-out domain phrases and real recordings (`benchmarks/asr.py`) and on caller groups
(`benchmarks/fairness.py`); README.md, "Speech recognition and fairness", has the figures:

- the greeting (`catalogue_prompt`, used by the server for English): what every caller has just heard, naming the
  company and the topics in well-formed sentences. Fewer word errors on domain phrases (5.8% -> 4.4% with Piper,
  41.4% -> 39.1% with espeak-ng), and the engine read more lines as on the perfect transcript in every condition
  (222 vs 214 of 256 clean, 196 vs 192 at 10 dB SNR); on real recordings a wash (11.7% -> 12.5% over the phone, a
  few words either way), and once its word "assistant" came out of a mumbled "dinosaurs";
- the domain terms as a word list (`terms_prompt`) or as faster-whisper `hotwords`: worse on real speech over the
  phone (13.9%, 16.4%), and the listed words leak into transcripts ("What is the app, talk, humidity?"). Kept for the
  benchmark, not used by the server.

The terms of `terms_prompt` are chosen from prompts/, never listed by hand:

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


def catalogue_prompt(catalogue: Catalogue) -> str:
    """The prompt the server gives Whisper: the catalogue's greeting, as the caller heard it, on one line."""
    return " ".join(catalogue.replies.greeting.split())


def terms_prompt(catalogue: Catalogue, max_terms: int = MAX_TERMS) -> str:
    """The catalogue's domain terms as one line (empty when it yields none); measured, not used by the server."""
    agent_texts = [intent.reply for intent in catalogue.intents.values()]
    agent_texts += [keyword for intent in catalogue.intents.values() for keyword in intent.keywords]
    examples = {name: intent.examples for name, intent in catalogue.intents.items()}
    return prompt_from_terms(domain_terms(examples, agent_texts, catalogue.language, max_terms))
