"""How the hand-in PDF prints (:mod:`prunelab.workbook.pdf`): the page's CSS, the scripts that fit tables and
keep short paragraphs whole before Chromium prints, and the footer with the page number."""

STYLE = """
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 10pt; line-height: 1.35;
       color: #111; margin: 0; font-variant-ligatures: none; }  /* copied text reads "fi", not one glyph */
h1 { font-size: 17pt; margin: 0 0 .6em; } h2 { font-size: 13pt; margin: 1.2em 0 .4em; }
h3 { font-size: 11pt; margin: 1em 0 .3em; } h1, h2, h3, h4 { break-after: avoid; }
h1 + p, h2 + p, h3 + p, h4 + p { break-after: avoid; }  /* a heading, its lead line and the text after it */
p, li { orphans: 3; widows: 3; }  /* no paragraph leaves 1 or 2 lines alone (shorter: KEEP_SHORT_PARAGRAPHS) */
a { color: inherit; text-decoration: none; }
section.part, section.task { break-before: page; }
.cover, .contents { break-after: page; }
.cover h1 { font-size: 24pt; margin-top: 30mm; } .cover .subtitle { font-size: 14pt; margin-bottom: 10mm; }
.cover .banner { zoom: .8; }
table.facts th { text-align: left; }
table.facts td, table.facts th { text-align: left; vertical-align: top; }
.contents ul { list-style: none; padding: 0; }
.contents li { display: flex; gap: 1em; margin: .25em 0; }
.contents li a { flex: 1; } .contents .page { min-width: 3em; text-align: right; }
.contents li.level1 { font-weight: bold; margin-top: .7em; }
.contents li.level2 { padding-left: 1.5em; font-size: 9pt; }
.contents li.level3 { padding-left: 3em; font-size: 8.5pt; }
figure { break-inside: avoid; margin: .8em 0; }
figure img { display: block; max-width: 100%; max-height: 190mm; height: auto; margin: .3em auto 0; }
figcaption { font-size: 9pt; }
div.table, div.opening { break-inside: avoid; margin: .8em 0; }  /* an opening: a heading's text and its table */
table { border-collapse: collapse; font-size: 8pt; }
tr { break-inside: avoid; }
/* a table cut across pages leaves at least three rows on each side (a lone last row under a repeated header) */
tbody tr:nth-child(2), tbody tr:nth-child(3), tbody tr:nth-last-child(-n+2) { break-before: avoid; }
td, th { border: 1px solid #bbb; padding: 2px 5px; } .nowrap { white-space: nowrap; }
caption, p.caption { caption-side: top; font-weight: bold; text-align: left; font-size: 9pt; padding-bottom: 3px; }
p.caption { margin: 0; break-after: avoid; break-inside: avoid; }  /* a table's caption, whole, with its first rows */
pre, code { white-space: pre-wrap; overflow-wrap: anywhere; }
pre { font-size: 8pt; line-height: 1.3; }  /* a command line of 90 characters fits the page's width unwrapped */
.failed { color: #a00; font-weight: bold; }
dl.glossary dt { font-weight: bold; margin-top: .5em; break-after: avoid; }
dl.glossary dd { margin: 0 0 0 1.5em; }
.key-pointer { font-size: 8.5pt; font-style: italic; color: #555; margin: .2em 0; }  /* a cross-reference, not text */
"""

# Wider than the page: scaled down to fit whole (a table is never cut off at the margin). Taller than half a page
# (the argument, in CSS px): allowed to break between rows, since kept whole it may start on a fresh page and
# leave up to all of the page before it blank (a table of most of a page after a heading's text did: the text
# alone atop a blank page); so is an opening (a heading's text and the table after it, kept together so that no
# heading ends a page alone) taller than half a page. A shorter one moves whole, leaving at most half a page.
# Returns each scaled table as [its caption, the type size it prints at in pt].
FIT_TABLES = """(pageHeight) => { const scaled = [];
  for (const t of document.querySelectorAll('table')) {
    if (t.parentElement.closest('table')) continue;
    const room = t.parentElement.clientWidth, need = t.scrollWidth;
    if (need > room) {
      t.style.zoom = room / need;
      const caption = t.caption || t.closest('div.table')?.querySelector('.caption');
      scaled.push([(caption ? caption.textContent : '').trim().slice(0, 60),
                   parseFloat(getComputedStyle(t).fontSize) * 0.75 * room / need]); } }
  for (const block of document.querySelectorAll('div.table, div.opening')) {
    if (block.getBoundingClientRect().height > pageHeight / 2) block.style.breakInside = 'auto'; }
  return scaled; }"""

# A paragraph or list item too short to leave ``orphans`` lines on one page and ``widows`` on the next is kept
# whole: where it cannot meet both, Chromium splits it all the same, leaving one or two lines alone atop a page.
KEEP_SHORT_PARAGRAPHS = """() => { for (const p of document.querySelectorAll('p, li')) {
  const style = getComputedStyle(p), line = parseFloat(style.lineHeight);
  const lines = (parseInt(style.orphans) + parseInt(style.widows)) * line - line / 2;
  if (p.getBoundingClientRect().height < lines) p.style.breakInside = 'avoid'; } }"""

FOOTER = ('<div style="font-size:8pt;width:100%;text-align:center;color:#555;font-family:sans-serif">'
          '<span class="pageNumber"></span> / <span class="totalPages"></span></div>')

# Marks for :mod:`.pdf_fit`, each given an id and a hidden link so that Chromium's print names it as a destination
# (its page, and how far down it): each figure and where the block that moves with it starts (a heading and its
# lead line before it keep with it), and each section's start and end. Applies the layout's fits (the argument:
# ``figures``, figure number -> image height in CSS px; ``sections``, section number -> font size in pt) and
# returns each figure's section (tasks start on a fresh page: a fit in one moves nothing in another), the height
# in CSS px from its mark to its foot and its image's height, and the number of sections.
MARK_LAYOUT = """(layout) => { const links = document.createElement('div');
  const sections = [...document.querySelectorAll('section')];
  const mark = (id, place) => { const div = Object.assign(document.createElement('div'), {id}); place(div); link(id); };
  const link = (id) => links.append(Object.assign(document.createElement('a'), {href: `#${id}`}));
  links.style.display = 'none';
  sections.forEach((section, k) => {
    if (layout.sections[k]) section.style.fontSize = `${layout.sections[k]}pt`;
    mark(`fit-start-${k}`, (div) => section.prepend(div));
    mark(`fit-end-${k}`, (div) => section.append(div)); });
  const figures = [...document.querySelectorAll('figure')].map((figure, i) => {
    const image = figure.querySelector('img');
    if (image && layout.figures[i]) image.style.maxHeight = `${layout.figures[i]}px`;
    let start = figure;
    while (start.previousElementSibling && getComputedStyle(start.previousElementSibling).breakAfter === 'avoid')
      start = start.previousElementSibling;
    mark(`fit-room-${i}`, (div) => start.before(div));
    figure.id = figure.id || `fit-figure-${i}`;
    link(figure.id);
    const top = start.getBoundingClientRect().top - parseFloat(getComputedStyle(start).marginTop);
    return {section: sections.indexOf(figure.closest('section')), need: figure.getBoundingClientRect().bottom - top,
            image: image ? image.getBoundingClientRect().height : 0, id: figure.id}; });
  document.body.append(links); return {figures, sections: sections.length}; }"""
