.PHONY: demo test zip bench gallery
demo:
	bash scripts/demo.sh
test:
	bash scripts/test.sh
zip:
	bash scripts/build_zip.sh
bench:
	bash scripts/setup_env.sh && for b in bench/*.py; do .venv/bin/python $$b; done
gallery:
	bash scripts/setup_env.sh && .venv/bin/python docs/gallery/make.py
