"""predict: masks as RLE from the real tiny engine, logits kept server-side for the next click."""

from __future__ import annotations

import json

import numpy as np
import pytest

from annotation.models import EmbeddingStatus, Image
from annotation.services.embeddings import get_or_compute_embedding
from annotation.services.errors import EmbeddingUnavailable, InvalidInput
from annotation.services.predict import describe_prediction, load_logits, predict
from engine import Prediction
from engine import rle as rle_codec
from engine.transforms import mask_prompt_logits
from registry.active import get_active_version
from registry.predictors import get_predictor
from tests import factories

pytestmark = pytest.mark.django_db


def test_answers_three_masks_as_rle_with_box_area_and_iou(image, annotator, tiny_model):
    answer = predict(image, annotator, points=[[20, 10]], labels=[1])

    assert answer["image"] == image.pk and len(answer["masks"]) == 3
    for mask in answer["masks"]:
        decoded = rle_codec.decode(mask["rle"])
        assert decoded.shape == (image.height, image.width)
        assert mask["area"] == int(decoded.sum())
        assert mask["bbox"] == rle_codec.bbox_xywh(mask["rle"])
        assert isinstance(mask["predicted_iou"], float)
        assert len(mask["logits_id"]) == 32
    assert answer["model"]["name"] == tiny_model.name
    assert answer["model"]["is_official"] is False and "untrained" in answer["model"]["hint"]


def test_single_mask_when_multimask_is_off(image, annotator, tiny_model):
    answer = predict(image, annotator, box=[5, 5, 40, 30], multimask=False)

    assert len(answer["masks"]) == 1


def test_mask_input_id_refines_the_previous_mask(image, annotator, tiny_model):
    first = predict(image, annotator, points=[[20, 10]], labels=[1])
    logits_id = first["masks"][0]["logits_id"]

    refined = predict(
        image,
        annotator,
        points=[[20, 10], [50, 40]],
        labels=[1, 0],
        mask_input_id=logits_id,
        multimask=False,
    )
    plain = predict(image, annotator, points=[[20, 10], [50, 40]], labels=[1, 0], multimask=False)

    assert len(refined["masks"]) == 1
    # The previous logits change the decoder's answer: they were really used. (The logits, not
    # the predicted IoU: an untrained model's IoU is clamped to 0 in both answers.)
    version = get_active_version()
    refined_logits = load_logits(refined["masks"][0]["logits_id"], image, version, annotator)
    plain_logits = load_logits(plain["masks"][0]["logits_id"], image, version, annotator)
    assert not np.allclose(refined_logits, plain_logits)


def test_unknown_or_malformed_mask_input_id_is_a_clear_error(image, annotator, tiny_model):
    for bad in ["0" * 32, "not-an-id"]:
        with pytest.raises(InvalidInput, match="unknown or expired"):
            predict(image, annotator, points=[[1, 1]], labels=[1], mask_input_id=bad)


def test_mask_input_id_of_another_image_is_refused(dataset, image, annotator, tiny_model):

    other = factories.add_image(dataset, seed=1)
    logits_id = predict(other, annotator, points=[[1, 1]], labels=[1])["masks"][0]["logits_id"]

    with pytest.raises(InvalidInput, match="another image"):
        predict(image, annotator, points=[[1, 1]], labels=[1], mask_input_id=logits_id)


@pytest.mark.parametrize(
    ("prompts", "message"),
    [
        ({}, "at least one point or a box"),
        ({"points": [[65, 10]], "labels": [1]}, "outside the 64x48 image"),
        ({"points": [[10, -1]], "labels": [1]}, "outside"),
        ({"points": [[10, 10]], "labels": []}, "need 1 labels"),
        ({"points": [[10, 10]], "labels": [2]}, "label 0 must be 1"),
        ({"box": [10, 10, 5, 20]}, "box"),
        ({"box": [0, 0, 10, 49]}, "box"),
        ({"points": [[float("nan"), 1]], "labels": [1]}, "finite"),
    ],
)
def test_bad_prompts_are_refused_with_what_is_wrong(image, annotator, tiny_model, prompts, message):
    with pytest.raises(InvalidInput, match=message):
        predict(image, annotator, **prompts)


def test_failed_embedding_answers_conflict_with_the_reason(image, annotator, tiny_model):
    Image.objects.filter(pk=image.pk).update(
        embedding_status=EmbeddingStatus.FAILED,
        encoder_key=tiny_model.encoder_key,
        embedding_error="OSError: disk on fire",
    )
    image.refresh_from_db()

    with pytest.raises(EmbeddingUnavailable, match="disk on fire") as caught:
        predict(image, annotator, points=[[1, 1]], labels=[1])
    assert caught.value.status_code == 409
    assert f"/api/images/{image.pk}/embed/" in caught.value.message


def test_queued_embedding_is_computed_on_demand(image, annotator, tiny_model):
    assert image.embedding_status == EmbeddingStatus.QUEUED

    predict(image, annotator, points=[[1, 1]], labels=[1])

    image.refresh_from_db()
    assert image.embedding_status == EmbeddingStatus.DONE


def test_answer_for_a_typical_photo_sized_image_stays_under_20_kb(image, annotator, tiny_model):
    # A trained model outlines objects; an untrained one answers noise, whose RLE is large. So
    # the size budget is checked on object-like masks at SA-1B's 1500x1000, through the same code
    # that shapes every answer.
    h, w = 1000, 1500
    yy, xx = np.mgrid[0:h, 0:w]
    masks = np.stack(
        [
            ((xx - 700) / rx) ** 2 + ((yy - 480) / ry) ** 2 <= 1
            for rx, ry in [(600, 400), (300, 250), (90, 60)]
        ]
    )
    prediction = Prediction(
        masks=masks,
        iou=np.array([0.91, 0.87, 0.55], np.float32),
        low_res_logits=np.random.default_rng(0).normal(size=(3, 256, 256)).astype(np.float32),
    )
    image.width, image.height = w, h

    answer = describe_prediction(prediction, image, tiny_model, annotator, embedding_computed=True)

    size = len(json.dumps(answer).encode())
    assert size < 20_000, size
    assert all(
        np.array_equal(rle_codec.decode(m["rle"]), masks[i]) for i, m in enumerate(answer["masks"])
    )


def test_refine_mask_sends_the_stored_mask_as_the_mask_prompt(image, annotator, tiny_model):
    stored = factories.add_mask(
        image, source="prefilled", rle=factories.rect_rle(image, 10, 8, 40, 30)
    )
    clicks = {"points": [[20, 10]], "labels": [1], "multimask": False}

    refined = predict(image, annotator, refine_mask=stored, **clicks)
    plain = predict(image, annotator, **clicks)

    version = get_active_version()
    refined_logits = load_logits(refined["masks"][0]["logits_id"], image, version, annotator)
    plain_logits = load_logits(plain["masks"][0]["logits_id"], image, version, annotator)
    assert len(refined["masks"]) == 1
    assert not np.allclose(refined_logits, plain_logits)
    # Exactly the decoder's answer to the stored mask's pixels as the prompt.
    embedding, _ = get_or_compute_embedding(image, version)
    pixels = rle_codec.decode(stored.rle)
    direct = get_predictor(version.pk).decode(
        embedding,
        points=[[20, 10]],
        labels=[1],
        mask_logits=mask_prompt_logits(pixels),
        multimask=False,
    )
    np.testing.assert_allclose(refined_logits, direct.low_res_logits, atol=1e-2)


def test_refine_mask_of_another_image_or_with_logits_too_is_refused(
    dataset, image, annotator, tiny_model
):
    other = factories.add_image(dataset, seed=1)
    foreign = factories.add_mask(other)
    with pytest.raises(InvalidInput, match=f"mask of image {other.pk}, not of image {image.pk}"):
        predict(image, annotator, points=[[1, 1]], labels=[1], refine_mask=foreign)

    own = factories.add_mask(image)
    logits_id = predict(image, annotator, points=[[1, 1]], labels=[1])["masks"][0]["logits_id"]
    with pytest.raises(InvalidInput, match="not both"):
        predict(
            image, annotator, points=[[1, 1]], labels=[1], refine_mask=own, mask_input_id=logits_id
        )
