"""The bad-input corpus of issue #7: hostile messages, each with the answer the hub owes it.

``build`` holds the primitives that craft hostile bodies from valid ones; ``cases``
(the table) is added on top of them.
"""
