.PHONY: demo test zip bench
demo:
	bash scripts/demo.sh
test:
	bash scripts/test.sh
zip:
	bash scripts/build_zip.sh
bench:
	bash scripts/setup_env.sh && for b in bench/*.py; do .venv/bin/python $$b; done
