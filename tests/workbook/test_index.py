"""How the front page and the PDF turn a notebook's display outputs into HTML (prunelab.workbook.index)."""

from prunelab.workbook.index import output_html


def test_a_settings_table_in_markdown_keeps_its_inline_code_and_escapes_the_rest():
    text = "| setting | value |\n| --- | --- |\n| runs | 165 records in the result store `results` |\n| x | a < b |\n"
    page = output_html({"output_type": "display_data", "data": {"text/markdown": text}})
    assert "<code>results</code>" in page and "`" not in page
    assert page.count("<tr>") == 3 and "a &lt; b" in page


def test_html_wins_over_markdown_and_plain_text_is_not_shown():
    assert output_html({"data": {"text/html": "<b>x</b>", "text/markdown": "*y*"}}) == "<b>x</b>"
    assert output_html({"data": {"text/plain": "z"}}) is None
