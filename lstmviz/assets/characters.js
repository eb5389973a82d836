/* Made from lstmviz/core/characters.py by `python -m lstmviz.core.characters`: edit the
   table there, then run that. How the painter shows characters a reader cannot see. */
window.lstmvizCharacters = {
 "names": {
  "\n": "\\n",
  "\t": "\\t",
  " ": "space"
 },
 "glyphs": {
  "\n": "\u23ce",
  "\t": "\u21e5",
  " ": "\u00b7"
 },
 "hiddenCategories": [
  "C",
  "Z"
 ]
};
