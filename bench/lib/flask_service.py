"""The Python service a user would otherwise write: Flask + scikit-learn (TF-IDF + LogisticRegression),
trained on the same training split as Kiln's model, served by gunicorn (Flask's production advice).

  python3 flask_service.py train TRAIN.csv MODEL.pkl     # fit and pickle the pipeline
  gunicorn -w 5 -b 127.0.0.1:PORT 'flask_service:create_app("MODEL.pkl")'
"""
import csv
import pickle
import sys

csv.field_size_limit(1 << 30)


def train(train_csv, out):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    texts, labels = [], []
    with open(train_csv, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            texts.append(row["text"])
            labels.append(row["label"])
    pipe = make_pipeline(TfidfVectorizer(sublinear_tf=True, min_df=2), LogisticRegression(max_iter=1000, C=10.0))
    pipe.fit(texts, labels)
    with open(out, "wb") as f:
        pickle.dump(pipe, f)


def create_app(model_path):
    from flask import Flask, jsonify, request
    with open(model_path, "rb") as f:
        pipe = pickle.load(f)
    classes = list(pipe.classes_)
    app = Flask(__name__)

    @app.post("/v1/predict")
    def predict():
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("texts"), list) or not body["texts"]:
            return jsonify(error={"code": "invalid_request", "message": "send {\"texts\": [...]}"}), 400
        k = int(body.get("top_k", 1))
        probs = pipe.predict_proba(body["texts"])
        out = []
        for row in probs:
            order = row.argsort()[::-1][:k]
            out.append({"label": classes[order[0]], "probability": float(row[order[0]]),
                        "top_k": [{"label": classes[i], "probability": float(row[i])} for i in order]})
        return jsonify(predictions=out)

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    return app


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "train":
        train(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
