"""The networks of MIMAFace, one module each: the denoiser (UNet with motion modules), the MIA
module, the CLIP appearance encoder, the CurricularFace identity encoder and the SD VAE, plus the
bundle that holds one mode's set (:class:`MIMAFaceModel`)."""
