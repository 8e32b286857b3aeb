"""Looking inside a model: attention maps, head diagnostics and the in-context copy score.

``attention`` captures attention weights (eager attention, only while inspecting),
``heads`` scores every head on the standard diagnostics, ``plots`` and ``page`` draw them.
"""
