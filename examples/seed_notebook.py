"""The seed notebook, with ember in place of transformers and sentence-transformers.

    python examples/seed_notebook.py [--model weights/all-MiniLM-L6-v2] [--token-model DIR]

First half: contextual token embeddings: the vector of "face" differs between
"did you see the look on her face" and "the new clock face on my watch is amazing"
(the seed ran bert-base-uncased through transformers; any BERT directory works here,
--token-model, by default the same model as the search).
Second half: semantic search of two new sentences over four documents, as
sentence-transformers' `model.encode` + `util.semantic_search` do it; the scores are
sentence-transformers' own on the same model, to 1e-4 (python/tests/test_seed_notebook.py).
"""
# %%
import argparse
from pathlib import Path

import numpy as np

import ember
from ember import util

ROOT = Path(__file__).resolve().parent.parent
ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--model", default=str(ROOT / "weights/all-MiniLM-L6-v2"))
ap.add_argument("--token-model", help="the model of the first half (default: --model)")
ap.add_argument("--device", default="auto")
args = ap.parse_args()

# %% [1] The contextual vector of "face" in two sentences
#   transformers:  outputs = model(**tokenizer(text, return_tensors="pt")).last_hidden_state
token_model = ember.Model(args.token_model or args.model, device=args.device)
text1 = "did you see the look on her face"
text2 = "the new clock face on my watch is amazing"
hidden1, hidden2 = token_model.encode([text1, text2], output_value="token_embeddings")
face1 = hidden1[token_model.tokenize(text1)["tokens"].index("face")]
face2 = hidden2[token_model.tokenize(text2)["tokens"].index("face")]
print(f"token model: {token_model}")
print(f"'face' in {text1!r} and in {text2!r}")
print(f"  equal: {np.array_equal(face1, face2)}")
print(f"  cosine similarity: {util.cos_sim(face1, face2)[0, 0]:.4f}")

# %% [2] Semantic search over four documents
#   sentence-transformers:  model = SentenceTransformer("all-MiniLM-L12-v2")
model = ember.Model(args.model, device=args.device)
docs = ["did you see the look on her face",
        "the new clock face on my watch is amazing",
        "it is time to face my demons",
        "how many new faces did you see in the office today"]
new_doc_1 = "his face was red with anger"
new_doc_2 = "time to face the consequences of your actions."

doc_embeddings = model.encode(docs)
query_embeddings = model.encode([new_doc_1, new_doc_2])
print(f"\nsearch model: {model}")
for query, hits in zip([new_doc_1, new_doc_2], util.semantic_search(query_embeddings, doc_embeddings, top_k=4)):
    print(f"query: {query}")
    for h in hits:
        print(f"  {h['score']:.6f}  [{h['corpus_id']}] {docs[h['corpus_id']]}")
    print(f"  best match: {docs[hits[0]['corpus_id']]}")
