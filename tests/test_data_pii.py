"""PII redaction: every kind the data stage promises, Japanese formats, checksums, allow-list."""

from __future__ import annotations

import pytest

from data_tools.pii import PiiScrubber, luhn_valid, my_number_valid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail taro.yamada+faq@example.co.jp now", "mail [EMAIL] now"),
        ("電話は03-1234-5678です", "電話は[PHONE]です"),
        ("携帯090-1234-5678まで", "携帯[PHONE]まで"),
        ("携帯０９０－１２３４－５６７８まで", "携帯[PHONE]まで"),
        ("09012345678", "[PHONE]"),
        ("call +81 90-1234-5678 or +1 415 555 0123.", "call [PHONE] or [PHONE]."),
        ("(03) 1234-5678", "[PHONE]"),
        ("〒100-0001 東京都千代田区", "[POSTAL_CODE] 東京都千代田区"),
        ("〒１００－０００１", "[POSTAL_CODE]"),
        ("card 4111 1111 1111 1111 exp", "card [CARD] exp"),
        ("card 4111-1111-1111-1111", "[CARD]".join(["card ", ""])),
        ("マイナンバーは1234 5678 9018です", "マイナンバーは[MY_NUMBER]です"),
        ("from 192.168.10.254 today", "from [IP] today"),
        ("v6 2001:0db8:85a3:0000:0000:8a2e:0370:7334", "v6 [IP]"),
    ],
)
def test_redacts_each_kind(text: str, expected: str) -> None:
    assert PiiScrubber().redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Order 4111 1111 1111 1112 is invalid Luhn",  # not a card
        "123456789012",  # My Number with a wrong check digit
        "version 1.2.3.4.5 and 300.1.1.1",  # not IP addresses
        "受付は10:00〜18:00、2024-01-15発送、5,500円以上で送料無料",
        "Returns within 30 days; ¥330 fee",
        "登録番号はT0000000000000です",  # an invoice registration number, not a card
        "0000 0000 0000 0000",
        "発送日は2024/01/15、お届けは2024年1月18日 14:30〜16:00です",  # dates and times
        "価格は¥12,800（税込14,080円）、合計1,234,567円",  # prices
        "Firmware v2.10.3, model ABC-1234, 型番1234-56",
        "Pi is 3.14159 and the ratio 16:9",
    ],
)
def test_leaves_lookalikes_alone(text: str) -> None:
    assert PiiScrubber().redact(text) == text


def test_counts_per_kind_and_allow_list() -> None:
    scrubber = PiiScrubber(allow=["0120-000-000", "support@acme.example"])
    text = "Call 0120-000-000 or support@acme.example; I am bob@x.org, 090-1111-2222, 03-9999-0000"
    assert scrubber.redact(text) == "Call 0120-000-000 or support@acme.example; I am [EMAIL], [PHONE], [PHONE]"
    assert scrubber.found == {"EMAIL": 1, "PHONE": 2}
    assert scrubber.scan("x@y.jp") == {"EMAIL": 1} and scrubber.found["EMAIL"] == 1  # scan does not count


def test_custom_patterns_become_placeholders() -> None:
    scrubber = PiiScrubber(custom={"order_id": r"ORD-\d{6}"})
    assert scrubber.redact("注文番号ORD-123456の件") == "注文番号[ORDER_ID]の件"


def test_checksums() -> None:
    assert luhn_valid("4111111111111111") and luhn_valid("5500 0000 0000 0004")
    assert not luhn_valid("4111111111111112") and not luhn_valid("1234")
    assert my_number_valid("123456789018") and not my_number_valid("123456789019")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("電話は03(1234)5678です", "電話は[PHONE]です"),
        ("045(123)4567まで", "[PHONE]まで"),
        ("（03）1234-5678 / ０３（１２３４）５６７８", "[PHONE] / [PHONE]"),
        ("IP 2001:db8::1 から", "IP [IP] から"),
        ("::1 and fe80::1%eth0 and ::ffff:192.0.2.1.", "[IP] and [IP] and [IP]."),
        ("山田太郎様、お問い合わせありがとうございます。", "[NAME]様、お問い合わせありがとうございます。"),
        ("ヤマダ タロウ様 / 鈴木さん / 田中殿", "[NAME]様 / [NAME]さん / [NAME]殿"),
        ("Dear Emily Chen, thank you. Mr. Brown called.", "Dear [NAME], thank you. Mr. [NAME] called."),
        ("東京都千代田区丸の内1-1-1 宛", "[ADDRESS] 宛"),
        ("大阪府大阪市北区梅田1丁目2番3号です", "[ADDRESS]です"),
        ("ship to 221B Baker Street, London", "ship to [ADDRESS], London"),
    ],
)
def test_redacts_the_forms_real_exports_hold(text: str, expected: str) -> None:
    assert PiiScrubber().redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "お客様各位 / 皆様 / ご担当者様 / 会員様限定 / 店長さん",  # addressees, not names
        "Dear Customer, Hi there, Hi Team",
        "東京都千代田区の店舗で受け取れます",  # a city alone is no one's address
        "伝票番号 1234-5678-9012 で追跡できます", "tracking number: 1234-5678-9012", "S/N 090-1234-5678",
        "version 10.0.19041.1", "v1.2.3.4", "バージョン1.2.3.4", "注文番号 4111 1111 1111 1111",
        "2026-03-31 10:00〜18:00 ¥5,500 ABC-1234-567", "std::cout and 10:00:00",
    ],
)
def test_look_alikes_survive(text: str) -> None:
    assert PiiScrubber().redact(text) == text


def test_known_names_and_reject_reasons_are_redacted(tmp_path) -> None:
    from data_tools.steps import Context
    from tunebot.config import DataConfig

    assert PiiScrubber(names=("Emily Chen",)).redact("Emily Chen wrote again") == "[NAME] wrote again"
    source = tmp_path / "x.json"
    source.write_text("[]", encoding="utf-8")
    ctx = Context(DataConfig(sources=[{"path": str(source)}]), "S", {"units": []}, "x")
    reject = {"reason": ctx.scrubbed("unknown author {'email': 'emily@example.com', 'phone': '090-1234-5678'}"),
              "row": ctx.scrubbed({"author": {"email": "emily@example.com", "name": "Dear Emily Chen"},
                                   "parts": ["call 03(1234)5678"]})}
    text = str(reject)
    assert "example.com" not in text and "1234" not in text and "Emily" not in text
    assert reject["row"]["author"]["email"] == "[EMAIL]" and reject["row"]["parts"] == ["call [PHONE]"]
