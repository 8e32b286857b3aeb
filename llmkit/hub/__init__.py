"""Publishing a run folder on the Hugging Face Hub: check it, pick its files, scan them for
secrets, render its card for the repo and upload it with ``huggingface_hub``."""
