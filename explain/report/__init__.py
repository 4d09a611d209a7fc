"""Self-contained HTML reports: one image explained (:mod:`.image`), or a batch summarised with its most
suspicious faces (:mod:`.batch`). :mod:`.html` holds the building blocks, :mod:`.provenance` what identifies
the models and libraries.

Every report is one HTML string with inline CSS and every figure embedded as a base64 PNG
(``<img src="data:image/png;base64,...">``): no scripts, no external URLs, so the file opens anywhere,
offline, and can be mailed or archived as is. All text is escaped (file names may contain markup). No
Streamlit here: the Explain and Batch pages, ``python -m explain --report`` and ``python -m models.predict
--report`` call it. ``progress(fraction, message)``, when given, is called as a report is computed.
"""
