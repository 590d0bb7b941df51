"""Capstone 2 - BERT sentiment fine-tuning (phase 07, week 12)

Goal: fine-tune a BERT classifier for sentiment end to end: data, tokeniser, lesson 07's BERT
      with lesson 08's classifier head and training loop, model choice on validation, one
      test measurement, a TF-IDF + logistic-regression baseline on the same split, accuracy, F1,
      confusion matrix, the negation slice, misclassified examples, and a checkpoint that
      reloads to identical predictions.
Run:  python phase07-transformer/capstone-bert-sentiment.py            (offline: tiny BERT on 07.08's review set; 100 s measured on a busy 2-core CPU)
      python phase07-transformer/capstone-bert-sentiment.py --quick    (seconds, offline, used by the tests)
      python phase07-transformer/capstone-bert-sentiment.py --sst2     (online: SST-2 + bert-base-uncased; hours on CPU, ~15 min on one GPU)
Expect: full-mode TARGET (online, --sst2, bert-base-uncased, 3 epochs, lr 2e-5): >= 0.90 accuracy on
        the GLUE SST-2 validation set. That is the expected value, NOT measured by this course
        (no network where it was written): the BERT paper (Devlin et al. 2019, table 1) reports
        93.5 on the SST-2 test set for BERT-base. Offline (measured here): the tiny BERT from
        random init reaches ~0.9-1.0 validation accuracy on the generated stand-in for SST-2 and
        less on the hand-written test sentences, against a TF-IDF + logistic-regression
        baseline on the same split; the reloaded checkpoint predicts identically.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked

EPOCHS = 15          # fine-tuning epochs, offline full run (the --sst2 path uses SST2_EPOCHS)
QUICK_EPOCHS = 2     # --quick: the pipeline end to end, not a trained model


def parse_args(argv=None):
    p = cli.parser(__doc__, epochs=(EPOCHS, QUICK_EPOCHS))
    p.add_argument("--sst2", action="store_true",
                   help="online: fine-tune a pretrained checkpoint on GLUE SST-2 (needs the network)")
    p.add_argument("--checkpoint", default="bert-base-uncased",
                   help="Hugging Face BERT checkpoint for --sst2 (e.g. prajjwal1/bert-tiny, "
                        "google/bert_uncased_L-4_H-256_A-4)")
    return p.parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import platform
import time

import torch

from dlcourse import CourseError, check, data, lessons, plot, train
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks the headless backend

bert = lessons.load("07.07")   # Bert, BertConfig, load_from_hf
ft = lessons.load("07.08")     # review set, WordVocab, BertClassifier, finetune, predict, NEGATION

TFIDF_NGRAMS = (1, 2)          # words and word pairs: "not good" is one feature
TFIDF_C = (0.1, 1.0, 10.0, 100.0)  # inverse regularisation strengths tried, chosen on validation
N_SHOWN_ERRORS = 5             # misclassified test sentences printed
# --sst2 (online) settings: the BERT paper's fine-tuning recipe for GLUE
SST2_EPOCHS = 3                # the paper tries 2-4
SST2_LR = 2e-5                 # the paper tries 5e-5, 3e-5, 2e-5
SST2_MAX_LEN = 64              # SST-2 sentences are short (mean ~10 words)
SST2_SELECT = 2000             # training sentences held out for model choice (GLUE's test
                               # labels are hidden, so GLUE's validation set is the test here)
SST2_TARGET = 0.90             # the full-mode target on GLUE SST-2 validation (bert-base)


# ---------------------------------------------------------------- metrics, from their definitions
def confusion(y_true, y_pred, n=2):
    """(n, n) counts: row = true class, column = predicted (scikit-learn's layout)."""
    # EXERCISE confusion: an (n, n) integer matrix of zeros; add 1 at [true class, predicted class] for every example
    m = torch.zeros(n, n, dtype=torch.long)
    for t, p in zip(y_true, y_pred):
        m[t, p] += 1
    return m
    # END EXERCISE


def f1_positive(m):
    """F1 of class 1 = 2 TP / (2 TP + FP + FN): the harmonic mean of precision and recall."""
    # EXERCISE f1_positive: read TP, FP, FN off the matrix (rows true, columns predicted); F1 = 2 TP / (2 TP + FP + FN), 0 when that is 0 / 0
    tp, fp, fn = m[1, 1].item(), m[0, 1].item(), m[1, 0].item()
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    # END EXERCISE


def report(name, y_true, y_pred, negation):
    y_true, y_pred = list(map(int, y_true)), list(map(int, y_pred))
    m = confusion(y_true, y_pred)
    acc = (m.trace().item()) / len(y_true)
    neg = [t == p for t, p, g in zip(y_true, y_pred, negation) if g]
    res = {"acc": acc, "f1": f1_positive(m), "negation_acc": sum(neg) / len(neg), "confusion": m}
    print(f"    {name:22s} acc {acc:.3f}  F1 {res['f1']:.3f}  negation slice {res['negation_acc']:.3f} "
          f"({len(neg)})  confusion [[TN FP] [FN TP]] = {m.tolist()}")
    return res


# ---------------------------------------------------------------- the baseline
def tfidf_baseline(split, negation):
    """TF-IDF of words and word pairs (same tokeniser as the BERT) + logistic regression, C
    chosen on validation, test measured once."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    vec = TfidfVectorizer(tokenizer=ft.words, token_pattern=None, lowercase=False,
                          ngram_range=TFIDF_NGRAMS)
    x_tr = vec.fit_transform(split["train"][0])
    best = None
    for c in TFIDF_C:
        clf = LogisticRegression(C=c, max_iter=2000).fit(x_tr, split["train"][1])
        val = clf.score(vec.transform(split["val"][0]), split["val"][1])
        if best is None or val > best[0]:
            best = (val, c, clf)
    val, c, clf = best
    pred = clf.predict(vec.transform(split["test"][0]))
    print(f"    TF-IDF + LR: C = {c} chosen on validation (acc {val:.3f})")
    return val, pred, c


# ---------------------------------------------------------------- offline: the tiny BERT
def offline(run):
    dev = run.device
    split, vocab, enc, _ = ft.build_data(run, run.seed)
    data.announce("07.08's course-written review sentences", kind="generated", stand_in_for="SST-2",
                  detail=f"{len(split['train'][0])} train, {len(split['val'][0])} validation, "
                         f"{len(split['test'][0])} hand-written test sentences")
    negation = [bool(ft.NEGATION.search(" ".join(ft.words(t)))) for t in split["test"][0]]
    y_test = split["test"][1]
    cfg = ft.tiny_config(len(vocab))
    torch.manual_seed(run.seed)
    t0 = time.perf_counter()
    model, hist, best_val, best_epoch = ft.finetune(ft.BertClassifier(cfg).to(dev), enc["train"],
                                                    enc["val"], run.epochs, run.seed, dev)
    train_seconds = time.perf_counter() - t0
    print(f"tiny BERT ({sum(p.numel() for p in model.parameters()):,} parameters): best validation "
          f"accuracy {best_val:.3f} at epoch {best_epoch} of {run.epochs}; {train_seconds:.1f} s")

    # checkpoint: tensors and plain containers only, so weights_only=True can load it
    path = run.out_dir / "best_model.pt"
    train.save_checkpoint(path, {"model": model.state_dict(), "config": vars(cfg),
                                 "vocab": vocab.itos, "val_acc": best_val, "epoch": best_epoch})
    saved = train.load_checkpoint(path)                        # weights_only=True inside
    reloaded = ft.BertClassifier(bert.BertConfig(**saved["config"])).to(dev)
    train.restore_model(reloaded, saved["model"])
    test_ids, test_mask, _ = enc["test"]
    pred = ft.predict(model, test_ids, test_mask, dev)         # the test set, measured once
    check.equal("reloaded checkpoint (weights_only=True): test predictions identical",
                ft.predict(reloaded, test_ids, test_mask, dev), pred)
    with torch.no_grad():
        check.close("...and validation logits identical", reloaded.eval()(*enc["val"][:2]),
                    model.eval()(*enc["val"][:2]), atol=0.0)
    check.true("checkpoint vocabulary = the training vocabulary", saved["vocab"] == vocab.itos,
               f"{len(saved['vocab'])} words, same order")

    print("--- test set (hand-written, measured once per model)")
    tfidf_val, tfidf_pred, tfidf_c = tfidf_baseline(split, negation)
    res_bert = report("tiny BERT", y_test, pred.tolist(), negation)
    res_tfidf = report("TF-IDF + LR", y_test, tfidf_pred.tolist(), negation)
    from sklearn.metrics import confusion_matrix, f1_score
    check.equal("our confusion matrix vs sklearn.metrics.confusion_matrix",
                res_bert["confusion"].tolist(), confusion_matrix(y_test, pred.tolist()).tolist())
    check.close("our F1 vs sklearn.metrics.f1_score", res_bert["f1"], f1_score(y_test, pred.tolist()),
                atol=1e-12)
    # the same on the baseline's predictions: a barely trained BERT may answer one class only
    # (then TP = 0 and a wrong F1 formula could still give sklearn's 0)
    check.equal("TF-IDF + LR: our confusion matrix vs sklearn's", res_tfidf["confusion"].tolist(),
                confusion_matrix(y_test, tfidf_pred.tolist()).tolist())
    check.close("TF-IDF + LR: our F1 vs sklearn.metrics.f1_score", res_tfidf["f1"],
                f1_score(y_test, tfidf_pred.tolist()), atol=1e-12)
    check.greater("TF-IDF + LR validation accuracy vs chance (0.5)", tfidf_val, 0.6)
    if not run.quick:
        check.greater("tiny BERT validation accuracy vs 0.8", best_val, 0.8)
    wrong = [(t, y, p) for t, y, p in zip(split["test"][0], y_test, pred.tolist()) if y != p]
    print(f"--- {min(N_SHOWN_ERRORS, len(wrong))} of the {len(wrong)} test sentences the tiny BERT gets wrong")
    for t, y, p in wrong[:N_SHOWN_ERRORS]:
        print(f"    true {ft.CLASS_NAMES[y]:8s} predicted {ft.CLASS_NAMES[p]:8s}  {t!r}")

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    axes[0].plot(range(1, len(hist["val_acc"]) + 1), hist["val_acc"], "o-", label="validation acc")
    axes[0].plot(range(1, len(hist["train_loss"]) + 1), hist["train_loss"], "s-", label="train loss")
    axes[0].set(xlabel="epoch", title="tiny BERT fine-tuning")
    axes[0].legend()
    for ax, (name, r) in zip(axes[1:], (("tiny BERT", res_bert), ("TF-IDF + LR", res_tfidf))):
        ax.imshow(r["confusion"], cmap="Blues")
        for i in range(2):
            for j in range(2):
                ax.text(j, i, int(r["confusion"][i, j]), ha="center", va="center")
        ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=ft.CLASS_NAMES, yticklabels=ft.CLASS_NAMES,
               xlabel="predicted", ylabel="true", title=f"{name}: test acc {r['acc']:.2f}")
    plot.save(fig, run, "sentiment.png")
    all_pos = confusion(y_test, [1] * len(y_test))              # a model that always says positive
    answers = {
        "tfidf_c": (f"{tfidf_c:g}", f"C = {tfidf_c:g} has the best validation accuracy "
                                     f"({tfidf_val:.3f}) of C in {list(TFIDF_C)}"),
        "always_positive_f1": (min(("0.5", "0.67", "1"), key=lambda o: abs(float(o) - f1_positive(all_pos))),
                               f"predicting 'positive' for all {len(y_test)} test sentences: confusion "
                               f"{all_pos.tolist()}, F1 {f1_positive(all_pos):.3f}, accuracy "
                               f"{all_pos.trace().item() / len(y_test):.3f}")}
    return answers, {"val_acc_bert": best_val, "best_epoch": best_epoch, "test_acc_bert": res_bert["acc"],
            "test_f1_bert": res_bert["f1"], "test_negation_acc_bert": res_bert["negation_acc"],
            "val_acc_tfidf": tfidf_val, "test_acc_tfidf": res_tfidf["acc"],
            "test_f1_tfidf": res_tfidf["f1"], "test_negation_acc_tfidf": res_tfidf["negation_acc"],
            "train_seconds": train_seconds}


# ---------------------------------------------------------------- online: SST-2 + a checkpoint
def online_sst2(run, checkpoint):
    """GLUE SST-2 with a pretrained BERT loaded into our classifier through 07.07's key mapping.
    Never run by the tests (it needs the network); the BERT-base target is SST2_TARGET."""
    if run.offline or not data.network_available(data.hf_host()):
        raise CourseError("--sst2 needs the network (Hugging Face hub and datasets); "
                          "run without --sst2 for the offline stand-in")
    from datasets import load_dataset
    from transformers import AutoTokenizer, BertForSequenceClassification
    ds = load_dataset("glue", "sst2")
    data.announce("GLUE SST-2 (Stanford Sentiment Treebank, binary)", kind="downloaded",
                  detail=f"{len(ds['train']):,} train, {len(ds['validation']):,} validation sentences")
    tok = AutoTokenizer.from_pretrained(checkpoint)
    hf = BertForSequenceClassification.from_pretrained(checkpoint, num_labels=2).to(run.device).eval()
    c = hf.config
    cfg = bert.BertConfig(c.vocab_size, c.hidden_size, c.num_hidden_layers, c.num_attention_heads,
                          c.intermediate_size, c.max_position_embeddings, c.type_vocab_size,
                          c.hidden_dropout_prob, c.layer_norm_eps)
    model = bert.load_from_hf(ft.BertClassifier(cfg).to(run.device), hf.state_dict()).eval()

    def encode(sentences, labels):
        e = tok(sentences, padding="max_length", truncation=True, max_length=SST2_MAX_LEN,
                return_tensors="pt")
        return e["input_ids"], e["attention_mask"], torch.tensor(labels)

    train_all = ds["train"].shuffle(seed=run.seed)
    select = encode(train_all["sentence"][:SST2_SELECT], train_all["label"][:SST2_SELECT])
    train_set = encode(train_all["sentence"][SST2_SELECT:], train_all["label"][SST2_SELECT:])
    test_set = encode(ds["validation"]["sentence"], ds["validation"]["label"])
    with torch.no_grad():
        ids, mask = test_set[0][:8].to(run.device), test_set[1][:8].to(run.device)
        check.close(f"{checkpoint}: our classifier's logits vs BertForSequenceClassification",
                    model(ids, mask), hf(input_ids=ids, attention_mask=mask).logits, atol=1e-4)
    t0 = time.perf_counter()
    model, hist, best_sel, best_epoch = ft.finetune(model, train_set, select, SST2_EPOCHS, run.seed,
                                                    run.device, lr=SST2_LR)
    acc = ft.accuracy(model, *test_set, run.device)
    print(f"SST-2 validation accuracy (measured once): {acc:.4f}; target for bert-base "
          f">= {SST2_TARGET}; {time.perf_counter() - t0:.0f} s")
    return {"sst2_validation_acc": acc, "selection_acc": best_sel, "best_epoch": best_epoch,
            "checkpoint": checkpoint, "epochs": SST2_EPOCHS}


def main(args) -> dict:
    run = cli.start(args, __file__)
    torch.set_num_threads(1)   # small matrices; and the numbers do not depend on the core count
    t0 = time.perf_counter()
    if getattr(args, "sst2", False):
        return cli.finish(run, online_sst2(run, args.checkpoint))
    answers, metrics = offline(run)
    wall = time.perf_counter() - t0
    hardware = f"{platform.machine()} {run.device}, {torch.get_num_threads()} torch thread(s)"
    text = (f"# Capstone 2 - BERT sentiment: what was measured, and what a real run should reach\n\n"
            f"Full-mode target (NOT measured here): >= {SST2_TARGET:.2f} accuracy on GLUE SST-2 "
            f"validation with bert-base-uncased fine-tuned {SST2_EPOCHS} epochs at lr {SST2_LR} "
            f"(reproduce: `python phase07-transformer/capstone-bert-sentiment.py --sst2`); "
            f"the BERT paper reports 93.5 on the SST-2 test set for BERT-base.\n\n"
            f"Measured here ({'--quick' if run.quick else 'full'} mode, seed {run.seed}, {hardware}, "
            f"{wall:.0f} s): a tiny BERT from random init on 07.08's generated review sentences "
            f"(a stand-in for SST-2, not SST-2), {run.epochs} epochs:\n"
            f"- tiny BERT: validation {metrics['val_acc_bert']:.3f}, test {metrics['test_acc_bert']:.3f}, "
            f"F1 {metrics['test_f1_bert']:.3f}, negation slice {metrics['test_negation_acc_bert']:.3f}\n"
            f"- TF-IDF + LR: validation {metrics['val_acc_tfidf']:.3f}, test {metrics['test_acc_tfidf']:.3f}, "
            f"F1 {metrics['test_f1_tfidf']:.3f}, negation slice {metrics['test_negation_acc_tfidf']:.3f}\n")
    (run.out_dir / "report.md").write_text(text, encoding="utf-8")
    print(text.rstrip())
    print(f"report: {run.out_dir / 'report.md'}")
    return cli.finish(run, {"epochs": run.epochs, **metrics, "wall_seconds": wall}, answers=answers)


# Questions to predict before running:
# - Which model will do better on the negation slice, TF-IDF with word pairs or the tiny BERT?
# - The test sentences use shapes the generator never produces. Which model should lose more
#   going from validation to test?
# - The offline numbers will not look like SST-2's. What would have to change for them to?

# Predict, then run: answer in your copy (`python -m dlcourse exercise 07.capstone2`) before running it;
# `python -m dlcourse check 07.capstone2` compares your answers with what the run measures.
# PREDICT tfidf_c (0.1 / 1 / 10 / 100): on these clean, template-made sentences, which inverse regularisation strength C does validation choose for TF-IDF + logistic regression?
# ANSWER tfidf_c:
# PREDICT always_positive_f1 (0.5 / 0.67 / 1): on the balanced test set, what F1 (positive class) does a model get that answers 'positive' for every sentence?
# ANSWER always_positive_f1:

if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
