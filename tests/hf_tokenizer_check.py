"""Checks that a shipped tokenizer.json is read by Hugging Face `tokenizers` and agrees with vocab.json.

The file is written by our own Rust code (`lens::methods::ioi::tokenizer_json`), not by `tokenizers`, so this is
the evidence that the library reads it as intended: every word of vocab.json encodes to its own id, a prompt
encodes to `<bos>` then the ids of its lower-cased words and punctuation (what `Vocab::encode` does: "store,"
is "store" then ","), the chapter's sentence gives the ids the Rust test expects, decoding gives the words back,
and an unknown word is an error (as in `Vocab::encode`). It is not part of the test command (that would need
Python on every machine); run it with

    python3 -m venv /tmp/hftok && /tmp/hftok/bin/pip install tokenizers transformers
    /tmp/hftok/bin/python tests/hf_tokenizer_check.py [public/models/ioi]

With `transformers` installed (no PyTorch needed) it also opens every shipped transformer folder with
`AutoTokenizer.from_pretrained` and compares the ids with vocab.json's.
"""
import json
import re
import sys

from tokenizers import Tokenizer


def main():
    model_dir = sys.argv[1] if len(sys.argv) > 1 else "public/models/ioi"
    tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    vocab = json.load(open(f"{model_dir}/vocab.json"))
    bos = vocab["<bos>"]
    assert bos == 0, bos

    # The same tokens with the same ids.
    theirs = tok.get_vocab(with_added_tokens=True)
    assert theirs == vocab, sorted(set(theirs.items()) ^ set(vocab.items()))[:10]

    # Every word alone encodes to <bos> and its id.
    for word, i in vocab.items():
        if word == "<bos>":
            continue
        ids = tok.encode(word).ids
        assert ids == [bos, i], (word, ids)

    # `Vocab::encode`'s pieces (`split_words`): runs of word characters, runs of other non-space characters.
    def pieces(text):
        return re.findall(r"\w+|[^\w\s]+", text.lower())

    prompts = [
        "When Mary and John went to the store , John gave a bottle to",
        "When John and Mary went to the store, John gave a bottle to",
        "On Monday, then, john and mary had a lot of fun at the park. John wanted to give a ball to",
        "it was late . amy waited for ben at the zoo . ben had a kite and threw it to",
    ]
    for text in prompts:
        want = [bos] + [vocab[w] for w in pieces(text)]
        enc = tok.encode(text)
        assert enc.ids == want, (text, enc.ids, want)
        assert enc.tokens[0] == "<bos>"
        back = tok.decode(enc.ids, skip_special_tokens=True)
        assert back == " ".join(pieces(text)), back
        print(f"ok: {len(enc.ids):>2} tokens  {back}")

    # The chapter's sentence (`ioi::CHAPTER_PROMPT`): template 0, BABA, the same ids as the Rust test's prompt.
    chapter = "When John and Mary went to the store, John gave a bottle to"
    words = "when john and mary went to the store , john gave a bottle to".split()
    assert tok.encode(chapter).ids == [bos] + [vocab[w] for w in words], tok.encode(chapter).tokens

    # An unknown word is an error, as in Vocab::encode (`<unk>` is named but not in the vocabulary).
    try:
        tok.encode("mary gave a zzzqx to")
    except Exception as e:  # tokenizers raises its own exception type
        print(f"ok: unknown word rejected ({e})")
    else:
        sys.exit("an unknown word was encoded")
    print(f"{len(vocab)} tokens agree")


def auto_tokenizers():
    """`AutoTokenizer.from_pretrained(dir)` on every shipped transformer folder (needs `transformers`, not torch):
    each reads its tokenizer.json through tokenizer_config.json and gives vocab.json's ids."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        print("transformers is not installed: AutoTokenizer not checked")
        return
    samples = {
        "induction": "the cat sat on the mat",
        "ioi": "When John and Mary went to the store, John gave a bottle to",
        "glassbox": None,
        "moby": "Call me Ishmael.\nSome years ago",
    }
    for name, text in samples.items():
        model_dir = f"public/models/{name}"
        vocab = json.load(open(f"{model_dir}/vocab.json"))
        tok = AutoTokenizer.from_pretrained(model_dir)
        assert len(tok) == len(vocab), (name, len(tok), len(vocab))
        if name == "moby":
            want = [vocab[c] for c in text]
        else:
            if text is None:
                text = " ".join(w for w in list(vocab)[1:6])
            want = [vocab["<bos>"]] + [vocab[w] for w in re.findall(r"\w+|[^\w\s]+", text.lower())]
        ids = tok(text)["input_ids"]
        assert ids == want, (name, ids, want)
        print(f"ok: AutoTokenizer reads {model_dir} ({len(ids)} ids)")


if __name__ == "__main__":
    main()
    auto_tokenizers()
