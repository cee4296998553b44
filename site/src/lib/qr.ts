// QR codes rendered on our server (no third-party QR services).
import QRCode from 'qrcode';

const OPTS = {
  errorCorrectionLevel: 'M' as const,
  margin: 2,
  width: 480,
  color: { dark: '#111827', light: '#ffffff' },
};

export function qrPng(text: string): Promise<Buffer> {
  return QRCode.toBuffer(text, { ...OPTS, type: 'png' });
}

export function qrDataUrl(text: string): Promise<string> {
  return QRCode.toDataURL(text, OPTS);
}
