# cmake -DIN=hardware.json -DOUT=hardware_json.inc -P embed_json.cmake: the file as a raw string literal.
file(READ ${IN} _text)
file(WRITE ${OUT} "R\"kiln_json(${_text})kiln_json\"\n")
