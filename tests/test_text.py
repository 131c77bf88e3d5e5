from voice.text import contains_phrase, normalize


def test_lower_case_without_punctuation():
    assert normalize("Hello, I have a QUESTION about my bill!", "en") == "hello i have a question about my bill"


def test_numbers_become_words_like_speech_recognition_writes_them():
    assert normalize("I paid 45 euros twice", "en") == normalize("i paid forty five euros twice", "en")
    assert normalize("ik heb 3 keer gebeld", "nl") == "ik heb drie keer gebeld"


def test_long_numbers_are_read_digit_by_digit():
    assert normalize("0612345", "en") == "zero six one two three four five"


def test_accents_do_not_matter():
    assert normalize("Ik wil het contract beëindigen, één keer", "nl") == "ik wil het contract beeindigen een keer"


def test_apostrophes_inside_words_are_kept():
    assert normalize("I don't want 'that'", "en") == "i don't want that"


def test_fillers_are_dropped_but_uh_huh_means_yes():
    assert normalize("um uh hmm", "en") == ""
    assert normalize("uh-huh, go ahead", "en") == "uhhuh go ahead"
    assert normalize("eh ja graag", "nl") == "ja graag"


def test_empty_text():
    assert normalize("", "en") == ""
    assert normalize(" ,.!? ", "en") == ""


def test_contains_phrase_matches_whole_words_only():
    assert contains_phrase("i want an agent please", "agent")
    assert not contains_phrase("the agentur called", "agent")
    assert contains_phrase("speak to a person now", "speak to a person")
