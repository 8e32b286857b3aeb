"""Compression and export: GGUF files for llama.cpp/Ollama and int8 models for CPU inference.

Each output is checked against the model it came from before it is put in place.
"""
