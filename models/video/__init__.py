"""Video: clips scored with the photos' own face path.

- ``decode``: open a clip by content (mp4, mov, m4v, webm, mkv, avi) with PyAV, check the limits
  (``Limits``: 200 MB, 10 min, 8K), scan its frames' timestamps, decode sampled frames upright
  (``open_video``, ``sample_pts``, ``decode_at``, ``read_frame``); errors are ``VideoError`` (an ImageLoadError).
- ``tracks``: faces linked over time by box overlap (``Sighting``, ``Track``, ``build_tracks``, ``clip_verdict``).
- ``score``: ``score_video(detector, source, frames=32, fps=None, progress=None, cancel=None) -> VideoResult``.
- ``inputs``: streams mixing photos and clips (``score_inputs``, ``score_rows``, ``read_named``, ``read_upload``).
- ``synth``: clips made at run time (``sample_clip``, ``make_clip``...), for the page, the tests and the benchmark.
"""
