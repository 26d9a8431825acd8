"""Stored documents, as the stream's object store keeps them: invoices' and credit notes' PDF and
XML, a Czech seller's ISDOC (each checked against the hash recorded when it was stored),
proformas, a customer's signed link, and the technicians' photos."""

from __future__ import annotations

import asyncio
import hashlib
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from events.contract import CreditNoteDocumentStored, ProformaDocumentStored, decode_event
from projections.failures import failures
from projections.rows import UserRow
from read_api import links
from read_api.deps import CurrentUser, billing_readers, invoice_or_404, job_or_404, models, settings_of, stream_of
from read_api.errors import ERRORS, Refused
from read_api.templating import page

router = APIRouter(responses=ERRORS)

# What each download is served as; the stored event's name ends in the same suffix.
MEDIA_TYPES = {"pdf": "application/pdf", "xml": "application/xml", "isdoc": "application/x-isdoc+xml"}


async def stored_document(request: Request, invoice_id: UUID, kind: str) -> Response:
    """The invoice's stored PDF, XML or ISDOC, checked against the hash recorded when it was stored."""
    found = await invoice_or_404(request, invoice_id)
    name, digest = {
        "pdf": (found.document, found.document_sha256),
        "xml": (found.xml_document, found.xml_sha256),
        "isdoc": (found.isdoc_document, found.isdoc_sha256),
    }[kind]
    if not name and kind == "isdoc" and found.document:
        raise Refused(404, f"invoice {found.number} has no ISDOC: only a Czech seller's invoices have one")
    if not name:
        stream = request.app.state.stream
        parked = (
            [f for f in await failures(stream, ["open", "retrying"]) if f.aggregate_id == str(invoice_id)]
            if stream is not None
            else []
        )
        if parked:
            raise Refused(
                404,
                f"invoice {found.number} has no {kind.upper()}: {parked[0].error} "
                "(the Failures page has it, with Try again)",
            )
        raise Refused(404, f"invoice {found.number} has no {kind.upper()} yet; it is being rendered")
    store = await stream_of(request).documents()
    data = (await store.get(name)).data or b""
    if hashlib.sha256(data).hexdigest() != digest:
        raise Refused(
            409, f"the stored {kind.upper()} of {found.number} does not match the hash recorded when it was issued"
        )
    filename = found.number.replace("/", "-") + "." + kind
    return Response(
        data, media_type=MEDIA_TYPES[kind], headers={"Content-Disposition": f'inline; filename="{filename}"'}
    )


async def issued_document(request: Request, who: UserRow, document_id: UUID, kind: str) -> Response:
    """A credit note's (or a proforma's) stored document, found by its event in the stream."""
    billing_readers(who)
    stream = stream_of(request)
    messages = await stream.direct_batch(
        {"seq": 1, "next_by_subj": stream.settings.aggregate_filter("events", document_id), "batch": 50}
    )
    found = [
        e
        for e in (decode_event(m.data) for m in messages)
        if isinstance(e, CreditNoteDocumentStored | ProformaDocumentStored) and e.name.endswith("." + kind)
    ]
    if not found:
        raise Refused(404, f"credit note {document_id} has no {kind.upper()} (yet)")
    data = (await (await stream.documents()).get(found[-1].name)).data or b""
    if hashlib.sha256(data).hexdigest() != found[-1].sha256:
        raise Refused(409, "the stored document does not match the hash recorded when it was issued")
    return Response(
        data,
        media_type=found[-1].media_type,
        headers={"Content-Disposition": f'inline; filename="document-{document_id}.{kind}"'},
    )


async def ksef_receipt(request: Request, who: UserRow, document_id: UUID) -> Response:
    """The official receipt (UPO) KSeF gave for a document, checked against its recorded hash."""
    billing_readers(who)
    row = (await asyncio.to_thread(models(request).ksef, [document_id])).get(document_id)
    if row is None:
        raise Refused(404, f"document {document_id} was never sent to KSeF: it has no UPO")
    if not row.upo:
        raise Refused(404, f"{row.number} has no UPO yet (KSeF state: {row.state.replace('_', ' ')})")
    data = (await (await stream_of(request).documents()).get(row.upo)).data or b""
    if hashlib.sha256(data).hexdigest() != row.upo_sha256:
        raise Refused(409, f"the stored UPO of {row.number} does not match the hash recorded when it was stored")
    filename = "UPO-" + (row.ksef_number or row.number.replace("/", "-")) + ".xml"
    return Response(
        data, media_type="application/xml", headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


@router.get(
    "/invoices/{invoice_id}/upo.xml",
    tags=["billing"],
    summary="The official receipt (UPO) KSeF gave for the invoice, as stored",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}}},
)
async def invoice_upo(request: Request, who: CurrentUser, invoice_id: UUID) -> Response:
    return await ksef_receipt(request, who, invoice_id)


@router.get(
    "/credit-notes/{note_id}/upo.xml",
    tags=["billing"],
    summary="The official receipt (UPO) KSeF gave for the credit note, as stored",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}}},
)
async def credit_note_upo(request: Request, who: CurrentUser, note_id: UUID) -> Response:
    return await ksef_receipt(request, who, note_id)


@router.get(
    "/jobs/{job_id}/photos/{photo_id}",
    tags=["read"],
    summary="A photo a technician took on the job",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
async def job_photo(request: Request, who: CurrentUser, job_id: UUID, photo_id: UUID) -> Response:
    job = await job_or_404(request, who, job_id)
    photo = next((p for p in job.photos if p.id == photo_id), None)
    if photo is None:
        raise Refused(404, f"no photo {photo_id} on this job")
    store = await stream_of(request).documents()
    data = (await store.get(photo.name)).data or b""
    return Response(data, media_type=photo.media_type, headers={"Cache-Control": "private, max-age=86400"})


@router.get(
    "/proformas/{proforma_id}.pdf",
    tags=["billing"],
    summary="A proforma invoice's PDF, as stored",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def proforma_pdf(request: Request, who: CurrentUser, proforma_id: UUID) -> Response:
    return await issued_document(request, who, proforma_id, "pdf")


@router.get(
    "/credit-notes/{note_id}.pdf",
    tags=["billing"],
    summary="A credit note's PDF, as stored",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def credit_note_pdf(request: Request, who: CurrentUser, note_id: UUID) -> Response:
    return await issued_document(request, who, note_id, "pdf")


@router.get(
    "/credit-notes/{note_id}.xml",
    tags=["billing"],
    summary="A credit note as UBL 2.1 CreditNote XML",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}}},
)
async def credit_note_xml(request: Request, who: CurrentUser, note_id: UUID) -> Response:
    return await issued_document(request, who, note_id, "xml")


@router.get(
    "/credit-notes/{note_id}.isdoc",
    tags=["billing"],
    summary="A Czech seller's credit note as ISDOC 6.0.2 (opravný daňový doklad), as stored",
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPES["isdoc"]: {}}}},
)
async def credit_note_isdoc(request: Request, who: CurrentUser, note_id: UUID) -> Response:
    return await issued_document(request, who, note_id, "isdoc")


@router.get(
    "/d/{token}",
    tags=["billing"],
    response_class=Response,
    openapi_extra={"security": []},
    summary="The invoice's PDF through a signed link (for the customer; no sign-in)",
    responses={200: {"content": {"application/pdf": {}}}, 403: {"description": "altered or expired"}},
)
async def customer_document(request: Request, token: str) -> Response:
    try:
        invoice_id = links.verify(token, settings_of(request).link_secret)
    except links.BadLink as bad:
        return page(request, "message.html", None, status_code=403, title="Link not valid", message=str(bad))
    return await stored_document(request, invoice_id, "pdf")


@router.get(
    "/invoices/{invoice_id}.pdf",
    tags=["billing"],
    summary="The invoice's PDF, as stored",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def invoice_pdf(request: Request, who: CurrentUser, invoice_id: UUID) -> Response:
    billing_readers(who)
    return await stored_document(request, invoice_id, "pdf")


@router.get(
    "/invoices/{invoice_id}.xml",
    tags=["billing"],
    summary="The invoice as an EN 16931 e-invoice (UBL 2.1), as stored",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}}},
)
async def invoice_xml(request: Request, who: CurrentUser, invoice_id: UUID) -> Response:
    billing_readers(who)
    return await stored_document(request, invoice_id, "xml")


@router.get(
    "/invoices/{invoice_id}.isdoc",
    tags=["billing"],
    summary="A Czech seller's invoice as ISDOC 6.0.2, for Czech accounting software, as stored",
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPES["isdoc"]: {}}}},
)
async def invoice_isdoc(request: Request, who: CurrentUser, invoice_id: UUID) -> Response:
    billing_readers(who)
    return await stored_document(request, invoice_id, "isdoc")
