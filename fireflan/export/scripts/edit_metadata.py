"""Copy a GGUF, adding or replacing metadata keys (ints as UINT32, strings as STRING, lists of bools as arrays).

    python edit_metadata.py SRC DST '{"tokenizer.ggml.eot_token_id": 106}'

Run by fireflan's export with llama.cpp's bundled gguf-py on the path (the copy routine is that of its own
gguf_new_metadata.py tool); not imported by fireflan.
"""

import json
import sys

import gguf
from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

src, dst, changes = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
reader = gguf.GGUFReader(src, "r")
arch = reader.get_field(gguf.Keys.General.ARCHITECTURE).contents()
writer = gguf.GGUFWriter(dst, arch=arch, endianess=reader.endianess)
alignment = reader.get_field(gguf.Keys.General.ALIGNMENT)
if alignment is not None:
    writer.data_alignment = alignment.contents()
new = {}
for key, value in changes.items():
    if isinstance(value, str):
        new[key] = MetadataDetails(gguf.GGUFValueType.STRING, value)
    elif isinstance(value, list):
        new[key] = MetadataDetails(gguf.GGUFValueType.ARRAY, value, sub_type=gguf.GGUFValueType.BOOL)
    else:
        new[key] = MetadataDetails(gguf.GGUFValueType.UINT32, int(value))
copy_with_new_metadata(reader, writer, new, [])
