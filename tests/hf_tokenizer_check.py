"""Checks that a shipped tokenizer.json is read by Hugging Face `tokenizers` and agrees with vocab.json.

The file is written by our own Rust code (`lens::methods::ioi::tokenizer_json`), not by `tokenizers`, so this is
the evidence that the library reads it as intended: every word of vocab.json encodes to its own id, a prompt
encodes to `<bos>` then the ids a whitespace split of the lower-cased text gives (what `Vocab::encode` does),
decoding gives the words back, and an unknown word is an error (as in `Vocab::encode`). It is not part of the
test command (that would need Python on every machine); run it with

    python3 -m venv /tmp/hftok && /tmp/hftok/bin/pip install tokenizers
    /tmp/hftok/bin/python tests/hf_tokenizer_check.py [public/models/ioi]
"""
import json
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

    prompts = [
        "When Mary and John went to the store , John gave a bottle to",
        "on monday , then , john and mary had a lot of fun at the park . john wanted to give a ball to",
        "it was late . amy waited for ben at the zoo . ben had a kite and threw it to",
    ]
    for text in prompts:
        want = [bos] + [vocab[w] for w in text.lower().split()]
        enc = tok.encode(text)
        assert enc.ids == want, (text, enc.ids, want)
        assert enc.tokens[0] == "<bos>"
        back = tok.decode(enc.ids, skip_special_tokens=True)
        assert back == " ".join(text.lower().split()), back
        print(f"ok: {len(enc.ids):>2} tokens  {back}")

    # An unknown word is an error, as in Vocab::encode (`<unk>` is named but not in the vocabulary).
    try:
        tok.encode("mary gave a zzzqx to")
    except Exception as e:  # tokenizers raises its own exception type
        print(f"ok: unknown word rejected ({e})")
    else:
        sys.exit("an unknown word was encoded")
    print(f"{len(vocab)} tokens agree")


if __name__ == "__main__":
    main()
