"""File uploads: a multipart form with a file, kept under a name the server
chooses, with the limits raised for that one route.

Run it with::

    python examples/uploads.py

then::

    echo "hello" > note.txt
    curl -i -F title=Notes -F doc=@note.txt http://127.0.0.1:8000/documents
                                        # 201: stored as documents/<id>.txt
    curl -i http://127.0.0.1:8000/documents
                                        # the stored documents
    head -c 3000000 /dev/zero > big.bin
    curl -i -F title=Big -F doc=@big.bin http://127.0.0.1:8000/documents
                                        # 413: the file is over 2 MiB

Files are stored in ``documents/`` next to this script, or in the directory
named by ``UPLOADS_DIR``.
"""

import os
import uuid
from pathlib import Path

from cello import App

app = App()

STORE = Path(os.environ.get("UPLOADS_DIR", Path(__file__).parent / "documents"))
ALLOWED = {"txt", "md", "pdf", "png", "jpg"}
MiB = 1024 * 1024
documents: dict[str, dict] = {}


@app.post("/documents", body_limit=3 * MiB)
async def upload(request):
    # A file over 2 MiB is refused with a 413 problem before this returns.
    form = await request.form(max_file_size=2 * MiB, max_files=1)
    doc = form.get_file("doc")
    if doc is None:
        return {"error": "send the file as the 'doc' field"}, 400
    extension = doc.extension()
    if extension not in ALLOWED:
        return {"error": f"accepted types: {', '.join(sorted(ALLOWED))}"}, 415
    STORE.mkdir(parents=True, exist_ok=True)
    # The client's file name is only shown, never used as a path.
    doc_id = uuid.uuid4().hex
    doc.save(STORE / f"{doc_id}.{extension}")
    documents[doc_id] = {
        "id": doc_id,
        "title": form.get_or("title", doc.filename),
        "filename": doc.filename,
        "size": doc.size(),
    }
    return documents[doc_id], 201


@app.get("/documents")
def listing(request):
    return list(documents.values())


if __name__ == "__main__":
    app.run()
