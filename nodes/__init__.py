"""ComfyUI nodes of the pack: thin wrappers over mimaface_core (category "MIMAFace").

Node ids start with "MIMAFace" and are never renamed once released (saved workflows name them).
"""

from . import _comfy
from .appearance import MIAAppearanceEncode
from .audio import AudioToMotion
from .composite import PasteBack
from .evaluate import EvaluateAnimation
from .faces import FaceTracksMotion, PasteBackFaces, SourceFaces
from .footage import FootageMotion
from .expressions import ExpressionControls, ExpressionKeyframes
from .gaze import GazeEmbed
from .loaders import LoadMIMAFaceModel
from .motion import EditMotion, ExtractMotion
from .motion_io import LoadMotion, SaveMotion
from .render import RenderCoeffImage
from .sampler import ICAClipSampler

_comfy.register_model_folders()

_NODES = {
    "MIMAFaceLoadModel": (LoadMIMAFaceModel, "Load MIMAFace Model"),
    "MIMAFaceExtractMotion": (ExtractMotion, "Extract 3DMM Motion"),
    "MIMAFaceGazeEmbed": (GazeEmbed, "Gaze Embed"),
    "MIMAFaceRenderCoeffImage": (RenderCoeffImage, "Render Coeff Image"),
    "MIMAFaceMIAAppearanceEncode": (MIAAppearanceEncode, "MIA Appearance Encode"),
    "MIMAFaceICAClipSampler": (ICAClipSampler, "ICA Clip Sampler"),
    "MIMAFacePasteBack": (PasteBack, "Paste Back (MIMAFace)"),
    "MIMAFaceEditMotion": (EditMotion, "Edit Motion (MIMAFace)"),
    "MIMAFaceSaveMotion": (SaveMotion, "Save Motion (MIMAFace)"),
    "MIMAFaceLoadMotion": (LoadMotion, "Load Motion (MIMAFace)"),
    "MIMAFaceAudioToMotion": (AudioToMotion, "Audio to 3DMM Motion (MIMAFace)"),
    "MIMAFaceEvaluateAnimation": (EvaluateAnimation, "Evaluate Animation (MIMAFace)"),
    "MIMAFaceSourceFaces": (SourceFaces, "Source Faces (MIMAFace)"),
    "MIMAFaceFaceTracksMotion": (FaceTracksMotion, "Face Tracks Motion (MIMAFace)"),
    "MIMAFacePasteBackFaces": (PasteBackFaces, "Paste Back Faces (MIMAFace)"),
    "MIMAFaceExpressionKeyframes": (ExpressionKeyframes, "Expression Keyframes (MIMAFace)"),
    "MIMAFaceExpressionControls": (ExpressionControls, "Expression Controls (MIMAFace)"),
    "MIMAFaceFootageMotion": (FootageMotion, "Footage Motion (MIMAFace)"),
}
NODE_CLASS_MAPPINGS: dict[str, type] = {k: v[0] for k, v in _NODES.items()}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {k: v[1] for k, v in _NODES.items()}
