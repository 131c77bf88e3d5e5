"""Twilio's 20 ms mu-law frames: assembling arbitrary chunks, padding the end, and float audio to frames."""

from __future__ import annotations

import numpy as np
import pytest

from telephony.twilio.framing import FRAME_BYTES, FRAME_MS, TWILIO_SAMPLE_RATE_HZ, FrameAssembler, pcm_to_twilio_frames
from telephony.twilio.mulaw import MULAW_SILENCE, mulaw_to_pcm16
from voice.pcm import pcm16_to_float32


def _ramp(length: int) -> bytes:
    # Distinct-looking bytes, so a lost, duplicated or reordered byte shows up.
    return bytes(i % 251 for i in range(length))


def test_constants_match_twilio():
    assert TWILIO_SAMPLE_RATE_HZ == 8000
    assert FRAME_MS == 20
    assert FRAME_BYTES == 160
    assert MULAW_SILENCE == 0xFF
    assert mulaw_to_pcm16(bytes([MULAW_SILENCE]))[0] == 0


def test_frames_are_160_bytes():
    frames = FrameAssembler().push(_ramp(1000))
    assert len(frames) == 6
    assert all(len(frame) == 160 and isinstance(frame, bytes) for frame in frames)


def test_remainder_kept_between_chunks():
    data = _ramp(1000)
    assembler = FrameAssembler()
    assert assembler.push(data[:100]) == []
    assert assembler.pending_bytes == 100
    frames = assembler.push(data[100:170])
    assert frames == [data[:160]]
    assert assembler.pending_bytes == 10
    frames += assembler.push(data[170:])
    assert b"".join(frames) == data[:960]
    assert assembler.pending_bytes == 40


@pytest.mark.parametrize("chunk_bytes", [1, 7, 159, 160, 161, 333, 5000])
def test_frames_do_not_depend_on_chunking(chunk_bytes):
    data = _ramp(4321)
    assembler = FrameAssembler()
    frames = []
    for start in range(0, len(data), chunk_bytes):
        frames += assembler.push(data[start : start + chunk_bytes])
    frames += assembler.flush(pad=False)
    assert b"".join(frames) == data
    assert all(len(frame) == FRAME_BYTES for frame in frames[:-1])


def test_flush_pads_with_silence():
    assembler = FrameAssembler()
    assembler.push(b"\x01\x02\x03")
    assert assembler.flush() == [b"\x01\x02\x03" + b"\xff" * 157]
    assert assembler.pending_bytes == 0
    assert assembler.flush() == []


def test_flush_without_padding_returns_the_remainder_as_is():
    assembler = FrameAssembler()
    assembler.push(_ramp(170))
    assert assembler.flush(pad=False) == [_ramp(170)[160:]]


def test_flush_after_whole_frames_adds_nothing():
    assembler = FrameAssembler()
    assembler.push(_ramp(320))
    assert assembler.flush() == []


def test_reset_drops_pending_bytes():
    assembler = FrameAssembler()
    assembler.push(_ramp(50))
    assembler.reset()
    assert assembler.pending_bytes == 0
    assert assembler.push(_ramp(160)) == [_ramp(160)]


def test_push_accepts_bytearray_and_memoryview():
    assembler = FrameAssembler()
    frames = assembler.push(bytearray(_ramp(100))) + assembler.push(memoryview(_ramp(160)[100:]))
    assert frames == [_ramp(100) + _ramp(160)[100:]]


def test_empty_input():
    assembler = FrameAssembler()
    assert assembler.push(b"") == []
    assert assembler.flush() == []
    assert pcm_to_twilio_frames(np.zeros(0, dtype=np.float32), 22050) == []


def test_one_second_of_piper_audio_is_fifty_frames():
    t = np.arange(22050) / 22050
    speech_like = (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    frames = pcm_to_twilio_frames(speech_like, 22050)
    assert len(frames) == 50
    assert all(len(frame) == FRAME_BYTES for frame in frames)


def test_partial_last_frame_is_padded_with_silence():
    # 30 ms at 8 kHz: one full frame and 80 samples, padded with 80 bytes of silence.
    samples = np.full(240, 0.25, dtype=np.float32)
    frames = pcm_to_twilio_frames(samples, TWILIO_SAMPLE_RATE_HZ)
    assert len(frames) == 2
    assert len(frames[1]) == FRAME_BYTES
    assert frames[1][80:] == bytes([MULAW_SILENCE]) * 80
    assert MULAW_SILENCE not in frames[1][:80]


def test_frames_decode_back_to_the_audio():
    t = np.arange(22050) / 22050
    tone = (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
    frames = pcm_to_twilio_frames(tone, 22050)
    decoded = pcm16_to_float32(mulaw_to_pcm16(b"".join(frames)))
    expected = np.sin(2 * np.pi * 1000.0 * np.arange(8000) / 8000) * 0.5
    middle = slice(800, 7200)  # away from the resampler's edges
    noise = decoded[middle] - expected[middle]
    snr_db = 10 * np.log10(np.sum(expected[middle] ** 2) / np.sum(noise**2))
    assert snr_db > 30.0


def test_loud_audio_saturates_instead_of_wrapping():
    frames = pcm_to_twilio_frames(np.full(160, 2.0, dtype=np.float32), TWILIO_SAMPLE_RATE_HZ)
    decoded = mulaw_to_pcm16(frames[0])
    assert decoded.min() > 0
    assert decoded.max() == 32124
