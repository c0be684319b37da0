"""Footage mode: re-perform the face in an existing video (beyond the release).

The footage's own tracked 3DMM (``face.tracks`` + ``motion.tracks``, smoothed tracked boxes)
gives head pose, identity shape and gaze per frame; a performance (speech through SadTalker's
audio networks, another video transferred relative to each clip's first frame, or expression
keyframes) gives the expression, by region (:mod:`.motion`). One frame of the footage (or a photo)
gives the appearance (:mod:`.reference`); the generated crops are composited back through a
feathered mask of the rendered BFM region with a per-frame colour match (:mod:`.composite`);
:mod:`.length` fits the footage to the performance's length.
"""
